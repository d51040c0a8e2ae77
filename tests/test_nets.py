"""Policy-value networks: shapes, batch independence, bfloat16, gradients and ONNX parity."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cartridge_jax import games
from cartridge_jax.config import ModelConfig
from cartridge_jax.model import nets

# Tiny sizes: these tests check wiring, not capacity. Batches are of BATCH or 1 examples, so
# that each network's apply compiles for just those two shapes.
BATCH = 5
SMALL = {
    "mlp": ModelConfig(kind="mlp", mlp_hidden=(16, 16), value_hidden=8),
    "resnet": ModelConfig(kind="resnet", resnet_blocks=2, resnet_channels=8, value_hidden=16),
}


@functools.lru_cache(maxsize=None)
def small_net(name: str, kind: str, dtype: str = "float32"):
    """(game, network, params, jitted apply); params come from the float32 net (same tree)."""
    game = games.make(name)
    network = nets.make_network(SMALL[kind].model_copy(update={"dtype": dtype}), game)
    float32_net = nets.make_network(SMALL[kind], game)
    # An "rbg" key only to keep the tests fast: XLA on CPU compiles a ResNet's init ~3x faster
    # with it than with the default threefry key (the parameters' shapes are the same).
    params = nets.init_params(float32_net, game, jax.random.key(0, impl="rbg"))
    return game, network, params, jax.jit(network.apply)


def observations(game, batch: int, seed: int = 0) -> np.ndarray:
    """float32[batch, rows, cols, planes] of random 0/1 planes, like real board encodings."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, (batch, *game.observation_shape)).astype(np.float32)


@pytest.mark.parametrize("kind", ["mlp", "resnet"])
@pytest.mark.parametrize("name", games.names())
def test_output_shapes_dtypes_and_value_range(name, kind):
    game, _, params, apply = small_net(name, kind)
    policy_logits, value = apply(params, observations(game, BATCH))
    assert policy_logits.shape == (BATCH, game.num_actions)
    assert value.shape == (BATCH,)
    assert policy_logits.dtype == jnp.float32 and value.dtype == jnp.float32
    assert np.all(np.isfinite(policy_logits))
    assert np.all(np.abs(value) < 1)


def test_params_are_float32_and_only_params():
    # No batch statistics or other mutable collections: apply(params, obs) is all there is.
    _, _, params, _ = small_net("connect4", "resnet")
    assert set(params) == {"params"}
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))


@pytest.mark.parametrize("name, kind", [("tictactoe", "mlp"), ("connect4", "resnet")])
def test_outputs_do_not_depend_on_the_rest_of_the_batch(name, kind):
    # Full float32 products: with a GPU's default (TF32) products, batch sizes 1 and 16 round
    # differently (1.3e-4 apart on an H100), far above the 1e-5 allowed here.
    with jax.default_matmul_precision("highest"):
        _check_batch_independence(name, kind)


def _check_batch_independence(name, kind):
    game, _, params, apply = small_net(name, kind)
    batch = observations(game, BATCH, seed=1)
    full_logits, full_value = apply(params, batch)
    # Each example alone (batch size 1) gives what it gave inside the batch ...
    for i in (0, BATCH - 1):
        logits, value = apply(params, batch[i : i + 1])
        np.testing.assert_allclose(logits[0], full_logits[i], atol=1e-5)
        np.testing.assert_allclose(value[0], full_value[i], atol=1e-5)
    # ... and changing the other examples leaves example 0's outputs alone.
    other = batch.copy()
    other[1:] = observations(game, BATCH - 1, seed=2)
    logits, value = apply(params, other)
    np.testing.assert_allclose(logits[0], full_logits[0], atol=1e-5)
    np.testing.assert_allclose(value[0], full_value[0], atol=1e-5)


@pytest.mark.parametrize("name, kind", [("tictactoe", "mlp"), ("connect4", "resnet")])
def test_bfloat16_runs_with_float32_params_and_outputs(name, kind):
    game, _, params, apply32 = small_net(name, kind)
    _, network16, _, apply16 = small_net(name, kind, "bfloat16")
    assert network16.dtype == jnp.bfloat16
    obs = observations(game, BATCH, seed=3)
    logits16, value16 = apply16(params, obs)
    logits32, value32 = apply32(params, obs)
    assert logits16.dtype == jnp.float32 and value16.dtype == jnp.float32
    # bfloat16 keeps ~3 significant digits; a few layers deep the error stays well under 0.1.
    np.testing.assert_allclose(logits16, logits32, atol=0.1, rtol=0.05)
    np.testing.assert_allclose(value16, value32, atol=0.05)
    assert np.all(np.abs(value16) < 1)


@pytest.mark.parametrize("name, expected", [
    ("tictactoe", nets.MLP), ("connect4", nets.ResNet), ("othello", nets.ResNet),
])
def test_auto_picks_mlp_for_tictactoe_and_resnet_otherwise(name, expected):
    game = games.make(name)
    network = nets.make_network(ModelConfig(), game)
    assert type(network) is expected
    assert network.num_actions == game.num_actions
    assert network.dtype == jnp.float32


def test_explicit_kind_overrides_auto():
    network = nets.make_network(ModelConfig(kind="resnet"), games.make("tictactoe"))
    assert isinstance(network, nets.ResNet)
    network = nets.make_network(ModelConfig(kind="mlp"), games.make("connect4"))
    assert isinstance(network, nets.MLP)


@pytest.mark.parametrize("name, kind", [("tictactoe", "mlp"), ("connect4", "resnet")])
def test_gradients_are_finite_and_nonzero_for_every_parameter(name, kind):
    game, network, params, _ = small_net(name, kind)
    obs = observations(game, BATCH, seed=4)
    rng = np.random.default_rng(5)
    policy_weights = rng.normal(size=(BATCH, game.num_actions)).astype(np.float32)
    value_weights = rng.normal(size=(BATCH,)).astype(np.float32)

    def loss(params):
        policy_logits, value = network.apply(params, obs)
        return jnp.sum(policy_logits * policy_weights) + jnp.sum(value * value_weights)

    grads = jax.jit(jax.grad(loss))(params)
    for path, grad in jax.tree_util.tree_leaves_with_path(grads):
        where = jax.tree_util.keystr(path)
        assert np.all(np.isfinite(grad)), where
        assert np.any(grad != 0), where


def test_describe_names_the_shape_and_counts_parameters():
    _, network, params, _ = small_net("connect4", "resnet")
    count = sum(np.size(leaf) for leaf in jax.tree.leaves(params))
    assert nets.describe(network, params) == f"ResNet 2x8, {count:,} parameters"
    assert count > 1000  # the thousands separator is exercised
    _, network, params, _ = small_net("tictactoe", "mlp")
    assert re.fullmatch(r"MLP 16-16, [\d,]+ parameters", nets.describe(network, params))
    _, network16, _, _ = small_net("tictactoe", "mlp", "bfloat16")
    assert "bfloat16" in nets.describe(network16, params)


def test_unbatched_observation_is_refused_with_a_hint():
    game, network, params, _ = small_net("tictactoe", "mlp")
    with pytest.raises(ValueError, match="batch axis"):
        network.apply(params, jnp.zeros(game.observation_shape))


@pytest.mark.parametrize("name, kind", [("tictactoe", "mlp"), ("connect4", "resnet")])
def test_onnx_export_matches_jax(name, kind):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from jax2onnx import to_onnx

    game, network, params, apply = small_net(name, kind)
    model = to_onnx(
        lambda obs: network.apply(params, obs),
        [("B", *game.observation_shape)],  # a string dimension: the batch stays dynamic
        opset=18,
        input_names=["observation"],
        output_names=["policy_logits", "value"],
    )
    onnx.checker.check_model(model)
    opsets = {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}
    assert opsets["ai.onnx"] == 18
    (graph_input,) = model.graph.input
    assert graph_input.name == "observation"
    assert graph_input.type.tensor_type.shape.dim[0].dim_param == "B"
    assert [output.name for output in model.graph.output] == ["policy_logits", "value"]

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, BATCH):
        obs = observations(game, batch, seed=batch)
        policy_logits, value = session.run(None, {"observation": obs})
        expected_logits, expected_value = apply(params, obs)
        assert policy_logits.shape == (batch, game.num_actions) and value.shape == (batch,)
        np.testing.assert_allclose(policy_logits, expected_logits, atol=1e-4)
        np.testing.assert_allclose(value, expected_value, atol=1e-4)
