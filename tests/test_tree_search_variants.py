"""`model.tree_search` against mctx on a toy game, through every option the searches take.

tests/test_tree_search.py compares the two on the real games and networks; here a toy game
(hashed int32 states, terminal states with rewards, illegal moves, a random MLP, a recurrent
function that uses its key) runs through the options the project does not use today:
max_depth, other Q-transforms, pytree embeddings, float or missing invalid-action masks,
typed keys, Gumbel's considered actions and scale. Actions, visit counts and the tree's
structure must be equal, values within 1e-5 relative; in four settings every field must be
bit-for-bit mctx's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import mctx
import numpy as np
import pytest
from mctx._src import seq_halving

from cartridge_jax.model import tree_search

NUM_ACTIONS = 5
POLICIES = ("muzero_policy", "gumbel_muzero_policy")


# A toy two-player game with real structure: the state is an int32 id, a move hashes it into
# the next id, some ids are terminal (reward +-1, discount 0), some moves are illegal. The
# "network" is a small randomly initialised MLP over features of the id. The recurrent
# function also uses its key (a tiny value noise), so the key passed to it is checked too.


def _features(state):
    s = state.astype(jnp.float32)
    return jnp.stack([jnp.sin(0.37 * s), jnp.cos(0.11 * s), jnp.sin(1.3 * s), (state % 7) / 7], -1)


def _network(params, state):
    """(prior logits [B, A], value [B]) of states [B]."""
    hidden = jnp.tanh(_features(state) @ params["w1"] + params["b1"])
    out = hidden @ params["w2"]
    return out[:, :NUM_ACTIONS], jnp.tanh(out[:, NUM_ACTIONS])


def _legal(state):
    """[B, A]: the moves allowed in each state; move `state % A` always is."""
    actions = jnp.arange(NUM_ACTIONS)
    return ((state[:, None] >> actions) & 1).astype(bool) | (
        actions == state[:, None] % NUM_ACTIONS
    )


def _masked(logits, legal):
    return jnp.where(legal, logits, jnp.finfo(logits.dtype).min)


def _next_state(state, action):
    x = state.astype(jnp.uint32) * jnp.uint32(2654435761) + (action.astype(jnp.uint32) + 1) * 40503
    x = (x ^ (x >> 13)) * jnp.uint32(0x5BD1E995)
    return ((x ^ (x >> 15)) % 1_000_003).astype(jnp.int32)


def recurrent_fn(params, key, action, state):
    next_state = _next_state(state, action)
    terminal = next_state % 5 == 0
    logits, value = _network(params, next_state)
    value = value + 0.01 * jax.random.uniform(key, value.shape)
    output = mctx.RecurrentFnOutput(
        reward=jnp.where(terminal, jnp.where(next_state % 2 == 0, 1.0, -1.0), 0.0),
        discount=jnp.where(terminal, 0.0, -1.0),
        prior_logits=_masked(logits, _legal(next_state)),
        value=jnp.where(terminal, 0.0, value),
    )
    return output, next_state


def pytree_recurrent_fn(params, key, action, embedding):
    """recurrent_fn over a pytree embedding: the id and a [B, 2] running feature."""
    output, state = recurrent_fn(params, key, action, embedding["state"])
    trail = embedding["trail"] + jnp.stack([action, state % 3], -1).astype(jnp.float32)
    return output, {"state": state, "trail": trail}


def make_problem(batch_size, seed=0):
    """(params, root, invalid_actions [B, A] bool) for `batch_size` root states."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = {
        "w1": jax.random.normal(k1, (4, 16)),
        "b1": 0.1 * jax.random.normal(k2, (16,)),
        "w2": jax.random.normal(k3, (16, NUM_ACTIONS + 1)),
    }
    state = jnp.arange(batch_size, dtype=jnp.int32) * 977 + 13 + seed
    logits, value = _network(params, state)
    legal = _legal(state)
    root = mctx.RootFnOutput(prior_logits=_masked(logits, legal), value=value, embedding=state)
    return params, root, ~legal


def run(module, policy, params, key, root, num_simulations, fn=recurrent_fn, **kwargs):
    search = functools.partial(getattr(module, policy), recurrent_fn=fn, **kwargs)
    return jax.jit(lambda key, root: search(params, key, root, num_simulations=num_simulations))(
        key, root
    )


def differences(ours, theirs, rtol=1e-5, atol=1e-6) -> list[str]:
    """What differs between two `PolicyOutput`s, beyond the tolerated.

    Actions, visit counts and the tree's structure must be equal; action weights and values
    equal within `rtol` (relative), `atol` for values near 0.
    """
    ours_tree, their_tree = ours.search_tree, theirs.search_tree
    found = []
    if not np.array_equal(ours.action, theirs.action):
        found.append("action")
    if not np.array_equal(ours_tree.summary().visit_counts, their_tree.summary().visit_counts):
        found.append("root visit counts")
    if not np.allclose(ours.action_weights, theirs.action_weights, rtol=rtol, atol=atol):
        found.append("action_weights")
    if not np.allclose(
        ours_tree.node_values[:, 0], their_tree.node_values[:, 0], rtol=rtol, atol=atol
    ):
        found.append("root value")
    if ours_tree.node_values.shape != their_tree.node_values.shape:
        return found + ["tree size"]
    for name in ("node_visits", "children_visits", "children_index", "parents"):
        if not np.array_equal(getattr(ours_tree, name), getattr(their_tree, name)):
            found.append(name)
    if not np.allclose(ours_tree.node_values, their_tree.node_values, rtol=rtol, atol=atol):
        found.append("node_values")
    return found


def bitwise_differences(ours, theirs) -> list[str]:
    """The fields of the outputs that are not bit-for-bit equal."""
    names = ["action", "action_weights"]
    leaves = [(ours.action, theirs.action), (ours.action_weights, theirs.action_weights)]
    for name in ours.search_tree.__dataclass_fields__:
        for a, b in zip(
            jax.tree.leaves(getattr(ours.search_tree, name)),
            jax.tree.leaves(getattr(theirs.search_tree, name)),
        ):
            names.append(name)
            leaves.append((a, b))
    return [name for name, (a, b) in zip(names, leaves) if not np.array_equal(a, b)]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("batch_size", [1, 16])
@pytest.mark.parametrize("num_simulations", [1, 2, 64])
def test_same_as_mctx(policy, batch_size, num_simulations):
    params, root, invalid = make_problem(batch_size, seed=num_simulations)
    key = jax.random.PRNGKey(batch_size * 100 + num_simulations)
    ours = run(tree_search, policy, params, key, root, num_simulations, invalid_actions=invalid)
    theirs = run(mctx, policy, params, key, root, num_simulations, invalid_actions=invalid)
    assert differences(ours, theirs) == []


# Variants of the options, each at 3 games and 24 simulations.
VARIANTS = {
    "puct temperature [B,1] and dirichlet noise": (
        "muzero_policy",
        {"temperature": jnp.array([[1.0], [0.5], [0.0]]), "dirichlet_alpha": 0.5},
    ),
    "agent (no noise, float pb_c_base)": (
        "muzero_policy",
        {"dirichlet_fraction": 0.0, "pb_c_init": 1.5, "pb_c_base": 19652.0},
    ),
    "puct without invalid actions": ("muzero_policy", {"invalid_actions": None}),
    "puct float invalid actions": ("muzero_policy", {"invalid_actions": "float"}),
    "puct max_depth 2 (leaves evaluated again)": ("muzero_policy", {"max_depth": 2}),
    "puct max_depth 1": ("muzero_policy", {"max_depth": 1}),
    "puct qtransform_by_min_max": (
        "muzero_policy",
        {
            "qtransform": functools.partial(
                mctx.qtransform_by_min_max, min_value=-1.0, max_value=1.0
            )
        },
    ),
    "puct pytree embedding": ("muzero_policy", {"fn": "pytree"}),
    "puct typed key": ("muzero_policy", {"key": "typed"}),
    "gumbel 3 considered actions, scale 0.5": (
        "gumbel_muzero_policy",
        {"max_num_considered_actions": 3, "gumbel_scale": 0.5},
    ),
    "gumbel deterministic": ("gumbel_muzero_policy", {"gumbel_scale": 0.0}),
    "gumbel max_depth 3": ("gumbel_muzero_policy", {"max_depth": 3}),
    "gumbel qtransform without mixed value": (
        "gumbel_muzero_policy",
        {
            "qtransform": functools.partial(
                mctx.qtransform_completed_by_mix_value, use_mixed_value=False, value_scale=0.3
            )
        },
    ),
    "gumbel pytree embedding": ("gumbel_muzero_policy", {"fn": "pytree"}),
}


def _variant_inputs(options, batch_size=3, seed=5):
    options = dict(options)
    params, root, invalid = make_problem(batch_size, seed=seed)
    fn = recurrent_fn
    if options.pop("fn", None) == "pytree":
        fn = pytree_recurrent_fn
        trail = jnp.zeros((batch_size, 2))
        root = root.replace(embedding={"state": root.embedding, "trail": trail})
    key = jax.random.PRNGKey(seed)
    if options.pop("key", None) == "typed":
        key = jax.random.key(seed)
    options.setdefault("invalid_actions", invalid)
    if isinstance(options["invalid_actions"], str):
        options["invalid_actions"] = invalid.astype(jnp.float32)
    return params, key, root, fn, options


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_same_as_mctx(name):
    policy, options = VARIANTS[name]
    params, key, root, fn, options = _variant_inputs(options)
    ours = run(tree_search, policy, params, key, root, 24, fn=fn, **options)
    theirs = run(mctx, policy, params, key, root, 24, fn=fn, **options)
    assert differences(ours, theirs) == []


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("max_depth", [None, 2])
def test_bit_for_bit(policy, max_depth):
    """Stricter than required: every field of the tree is bit-for-bit mctx's.

    This holds because the same float operations are emitted; should it ever fail alone
    (with `test_same_as_mctx` passing), look for a multiply-add that XLA fuses differently.
    """
    params, root, invalid = make_problem(16, seed=7)
    key = jax.random.PRNGKey(7)
    options = {"invalid_actions": invalid, "max_depth": max_depth}
    ours = run(tree_search, policy, params, key, root, 48, **options)
    theirs = run(mctx, policy, params, key, root, 48, **options)
    assert bitwise_differences(ours, theirs) == []


@pytest.mark.parametrize(
    "change",
    [
        {"pb_c_init": 1.0},
        {"num_simulations": 31},
    ],
)
def test_a_different_search_is_detected(change):
    """The control: `differences` does report a search that is not mctx's."""
    params, root, invalid = make_problem(16, seed=3)
    key = jax.random.PRNGKey(3)
    change = dict(change)
    num_simulations = change.pop("num_simulations", 32)
    ours = run(
        tree_search,
        "muzero_policy",
        params,
        key,
        root,
        num_simulations,
        invalid_actions=invalid,
        **change,
    )
    theirs = run(mctx, "muzero_policy", params, key, root, 32, invalid_actions=invalid)
    found = differences(ours, theirs)
    assert "root visit counts" in found, found


def test_sequential_halving_table():
    for considered in (1, 2, 3, 4, 16):
        for num_simulations in (1, 2, 5, 16, 50, 200):
            ours = tree_search._considered_visits_table(considered, num_simulations)
            theirs = seq_halving.get_table_of_considered_visits(considered, num_simulations)
            np.testing.assert_array_equal(ours, np.array(theirs))
