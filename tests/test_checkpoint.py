"""Checkpoints: round trip (typed PRNG keys included), retention, identity and shape checks."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cartridge_jax.run.checkpoint import CheckpointError, Checkpoints, params_fingerprint


class Replay(NamedTuple):
    observation: jax.Array  # [capacity, 3]
    filled: jax.Array  # bool[capacity]


def _state(hidden=4, seed=0):
    params = {"dense": {"w": jnp.full((3, hidden), 0.5, jnp.float32), "b": jnp.zeros(hidden)}}
    return {
        "params": params,
        "count": jnp.int32(7),
        "replay": Replay(jnp.arange(15, dtype=jnp.float32).reshape(5, 3),
                         jnp.array([True, False, True, False, False])),
        "key": jax.random.key(seed),
        "game_keys": jax.random.split(jax.random.key(seed + 1), 4),  # typed, [4]
    }


def _meta(state, **overrides):
    meta = {
        "game": "tictactoe",
        "encoding_version": 1,
        "network": {"kind": "mlp", "hidden": [4]},
        "params_fingerprint": params_fingerprint(state["params"]),
        "iteration": 1,
    }
    meta.update(overrides)
    return meta


def _assert_same(restored, original):
    assert jax.tree.structure(restored) == jax.tree.structure(original)
    for got, want in zip(jax.tree.leaves(restored), jax.tree.leaves(original)):
        assert got.dtype == want.dtype and got.shape == want.shape
        if jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
            np.testing.assert_array_equal(jax.random.key_data(got), jax.random.key_data(want))
        else:
            np.testing.assert_array_equal(got, want)


def test_round_trip_restores_arrays_keys_and_meta(tmp_path):
    state = _state(seed=3)
    with Checkpoints(tmp_path / "checkpoints", max_to_keep=3) as checkpoints:
        checkpoints.save(1, state, _meta(state))
    # a fresh object, as after a restart
    with Checkpoints(tmp_path / "checkpoints", max_to_keep=3) as checkpoints:
        assert checkpoints.latest_iteration() == 1
        restored, meta = checkpoints.restore(_state(seed=99), expected_meta=_meta(state))
    _assert_same(restored, state)
    assert isinstance(restored["replay"], Replay)
    assert meta == _meta(state)
    # the restored key draws the same numbers as the saved one
    assert jax.random.uniform(restored["key"]) == jax.random.uniform(state["key"])


def test_empty_or_missing_directory_has_no_latest_iteration(tmp_path):
    (tmp_path / "empty").mkdir()
    assert Checkpoints(tmp_path / "empty", max_to_keep=2).latest_iteration() is None
    assert Checkpoints(tmp_path / "missing", max_to_keep=2).latest_iteration() is None
    assert not (tmp_path / "missing").exists()  # reading creates nothing
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        Checkpoints(tmp_path / "empty", max_to_keep=2).restore(_state(), expected_meta={})


def test_max_to_keep_and_restoring_an_older_iteration(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=2)
    for iteration in range(1, 5):
        state = {**_state(), "count": jnp.int32(iteration)}
        checkpoints.save(iteration, state, _meta(state, iteration=iteration))
    assert checkpoints.iterations() == [3, 4]
    assert checkpoints.latest_iteration() == 4
    restored, meta = checkpoints.restore(_state(), expected_meta=_meta(_state()), iteration=3)
    assert int(restored["count"]) == 3 and meta["iteration"] == 3
    with pytest.raises(CheckpointError, match="no checkpoint of iteration 1 .* iterations: 3, 4"):
        checkpoints.restore(_state(), expected_meta={}, iteration=1)
    checkpoints.close()


def test_saving_an_iteration_not_after_the_latest_is_refused(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=2)
    checkpoints.save(2, _state(), _meta(_state()))
    with pytest.raises(CheckpointError, match="cannot save iteration 2 .* holds iteration 2"):
        checkpoints.save(2, _state(), _meta(_state()))
    with pytest.raises(CheckpointError, match="not plain JSON"):
        checkpoints.save(3, _state(), {"game": object()})


@pytest.mark.parametrize(
    "field, saved, expected",
    [
        ("game", "connect4", "tictactoe"),
        ("encoding_version", 1, 2),
        ("params_fingerprint", "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"),
        ("network", {"kind": "mlp", "hidden": [4]}, {"kind": "resnet", "blocks": 2}),
    ],
)
def test_checkpoint_of_another_run_is_refused_naming_both_values(tmp_path, field, saved, expected):
    checkpoints = Checkpoints(tmp_path / "checkpoints", max_to_keep=2)
    checkpoints.save(1, _state(), _meta(_state(), **{field: saved}))
    with pytest.raises(CheckpointError) as caught:
        checkpoints.restore(_state(), expected_meta=_meta(_state(), **{field: expected}))
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / "checkpoints") in message
    assert field in message
    for value in (saved, expected):
        shown = value if isinstance(value, str) else str(value).replace("'", '"').replace(" ", "")
        assert shown in message, message
    assert "use another --run-dir" in message


def test_tuples_in_expected_meta_match_lists_read_back(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=2)
    checkpoints.save(1, _state(), _meta(_state(), network={"hidden": (4, 4)}))
    checkpoints.restore(_state(), expected_meta=_meta(_state(), network={"hidden": (4, 4)}))


def test_template_of_other_shapes_dtypes_or_structure_is_refused(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=2)
    checkpoints.save(1, _state(hidden=4), _meta(_state(hidden=4)))
    # identity fields left out, so the tree check itself is what refuses
    cases = {
        "params/dense/w is float32[3,4] there, float32[3,8] here": _state(hidden=8),
        "count is int32[] there, float32[] here": {**_state(), "count": jnp.float32(7)},
        "extra missing there": {**_state(), "extra": jnp.zeros(2)},
        "key not in this run's state": {k: v for k, v in _state().items() if k != "key"},
    }
    for expected_text, template in cases.items():
        with pytest.raises(CheckpointError) as caught:
            checkpoints.restore(template, expected_meta={"game": "tictactoe"})
        assert expected_text in str(caught.value)
        assert "\n" not in str(caught.value)


def test_unfinished_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    checkpoints = Checkpoints(tmp_path, max_to_keep=3)
    checkpoints.save(1, _state(), _meta(_state()))
    checkpoints.close()
    # What a kill during the save of iteration 2 leaves: orbax's temporary folder, never "2/".
    leftover = tmp_path / "2.orbax-checkpoint-tmp"
    (leftover / "state").mkdir(parents=True)
    (leftover / "state" / "half_written").write_bytes(b"\0" * 10)
    checkpoints = Checkpoints(tmp_path, max_to_keep=3)
    assert checkpoints.latest_iteration() == 1
    restored, _ = checkpoints.restore(_state(), expected_meta=_meta(_state()))
    _assert_same(restored, _state())
    checkpoints.save(2, _state(), _meta(_state()))  # the leftover is replaced
    assert checkpoints.iterations() == [1, 2]
    assert not leftover.exists()


def test_relative_directory_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoints = Checkpoints("runs/x/checkpoints", max_to_keep=1)
    checkpoints.save(1, _state(), _meta(_state()))
    assert (tmp_path / "runs/x/checkpoints/1").is_dir()
    with pytest.raises(CheckpointError, match="checkpoint in runs/x/checkpoints "):
        checkpoints.restore(_state(), expected_meta=_meta(_state(), game="connect4"))


def test_params_fingerprint_depends_on_shapes_not_values():
    small, other_values, wider = _state(hidden=4), _state(hidden=4, seed=5), _state(hidden=8)
    other_values["params"]["dense"]["w"] = other_values["params"]["dense"]["w"] + 1
    fingerprint = params_fingerprint(small["params"])
    assert len(fingerprint) == 16
    assert fingerprint == params_fingerprint(other_values["params"])
    assert fingerprint == params_fingerprint(jax.eval_shape(lambda p: p, small["params"]))
    assert fingerprint != params_fingerprint(wider["params"])
    as_half = jax.tree.map(lambda x: x.astype(jnp.float16), small["params"])
    assert fingerprint != params_fingerprint(as_half)
