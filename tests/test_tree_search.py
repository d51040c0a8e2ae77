"""`model.tree_search` computes what mctx computes, at a cost per simulation that does not grow
with the tree.

Equality: both searches run on the same roots, recurrent functions (the real rules and real
networks: randomly initialised ones and the shipped models), keys and settings, from positions
early, midway and near the end of games (illegal moves masked at the root, terminal children
inside the tree); visit counts and chosen actions must be exactly equal, action weights and root
values equal within 1e-5 relative. A deliberately perturbed search (another c_puct, one
simulation fewer) must fail the same comparison.

Cost: the compiled search (B = 128, S = 512) may not produce a whole tree-shaped array inside
its loops except by updating the loop-carried buffer in place; plain mctx fails that check.
"""

from __future__ import annotations

import functools
import pathlib
import re

import jax
import jax.numpy as jnp
import mctx
import numpy as np
import pytest

from cartridge_jax import games
from cartridge_jax.bench import search as search_bench
from cartridge_jax.config import ModelConfig
from cartridge_jax.games.base import uniform_among, where_batched
from cartridge_jax.model import load, nets, search, tree_search

SHIPPED = pathlib.Path(__file__).resolve().parents[1] / "site" / "models"
SMALL_NET = ModelConfig(kind="mlp", mlp_hidden=(32, 32), value_hidden=16)
# Plies into the game at which the positions start: early, midway, near the end.
DEPTHS = {"tictactoe": (0, 3, 6), "connect4": (0, 14, 34), "othello": (0, 20, 54)}


@functools.lru_cache(maxsize=None)
def positions(game_name: str, batch: int, seed: int = 0):
    """`batch` live positions of `game_name`, spread over DEPTHS plies of random play."""
    game = games.make(game_name)
    key = jax.random.key(seed)
    depth = jnp.asarray(DEPTHS[game_name])[jnp.arange(batch) % 3]  # [B]

    def ply(states, inputs):
        index, key = inputs
        moves = jax.vmap(uniform_among)(jax.random.split(key, batch), states.legal_action_mask)
        stepped = jax.vmap(game.step)(states, moves)
        keep = (index < depth) & ~stepped.terminated  # stop before a game would end
        return where_batched(keep, stepped, states), None

    states = jax.vmap(game.init)(jax.random.split(key, batch))
    plies = max(DEPTHS[game_name])
    states, _ = jax.jit(lambda s: jax.lax.scan(
        ply, s, (jnp.arange(plies), jax.random.split(key, plies))))(states)
    return states


@functools.lru_cache(maxsize=None)
def network(game_name: str, shipped: bool):
    """(apply, params): a small randomly initialised MLP, or the shipped model."""
    if shipped:
        model = load.load_model(SHIPPED / game_name)
        return model.network.apply, model.params
    game = games.make(game_name)
    net = nets.make_network(SMALL_NET, game)
    return net.apply, nets.init_params(net, game, jax.random.key(7))


POLICIES = {  # "all": every action of the game (search.agent_search's setting)
    # The agent's settings but reply_depth, which mctx does not have (off by default).
    "agent": (tree_search.gumbel_muzero_policy, mctx.gumbel_muzero_policy,
              {"max_num_considered_actions": "all", "gumbel_scale": 0.0}),
    "puct": (tree_search.muzero_policy, mctx.muzero_policy,
             {"dirichlet_fraction": 0.25, "dirichlet_alpha": 0.3, "pb_c_init": 1.25,
              "pb_c_base": search.PB_C_BASE, "temperature": "per-game"}),
    "gumbel": (tree_search.gumbel_muzero_policy, mctx.gumbel_muzero_policy,
               {"max_num_considered_actions": 16, "gumbel_scale": 1.0}),
}


def run_search(policy, game_name: str, shipped: bool, batch: int, simulations: int, settings):
    game = games.make(game_name)
    apply, params = network(game_name, shipped)
    states = positions(game_name, batch)
    settings = dict(settings)
    if settings.get("max_num_considered_actions") == "all":
        settings["max_num_considered_actions"] = game.num_actions
    if settings.get("temperature") == "per-game":  # [B, 1], as self-play passes it
        settings["temperature"] = jnp.where(jnp.arange(batch) % 2 == 0, 1.0, 0.1)[:, None]

    @jax.jit
    def run(params, key):
        root = search.root_output(game, apply, params, states)
        output = policy(params, key, root, search.make_recurrent_fn(game, apply),
                        num_simulations=simulations,
                        invalid_actions=~states.legal_action_mask, **settings)
        return (output.action, output.action_weights, output.search_tree.summary().visit_counts,
                output.search_tree.node_values[:, 0])

    return jax.device_get(run(params, jax.random.key(3)))


def differences(ours, theirs) -> list[str]:
    """What differs between two searches' (action, weights, visits, root value)."""
    (action, weights, visits, value), (action_m, weights_m, visits_m, value_m) = ours, theirs
    found = []
    if not np.array_equal(visits, visits_m):
        found.append("visit counts")
    if not np.array_equal(action, action_m):
        found.append("actions")
    if not np.allclose(weights, weights_m, rtol=1e-5, atol=1e-7):
        found.append("action weights")
    if not np.allclose(value, value_m, rtol=1e-5, atol=1e-6):
        found.append("root values")
    return found


CASES = [  # (game, policy, batch, simulations)
    ("tictactoe", "agent", 1, 1), ("tictactoe", "puct", 9, 32), ("tictactoe", "gumbel", 9, 7),
    ("connect4", "agent", 16, 32), ("connect4", "puct", 3, 7), ("connect4", "gumbel", 16, 32),
    ("othello", "agent", 6, 7), ("othello", "puct", 16, 16), ("othello", "gumbel", 3, 32),
]


@pytest.mark.parametrize("game_name,name,batch,simulations", CASES)
def test_equal_to_mctx_with_random_networks(game_name, name, batch, simulations):
    ours, theirs, settings = POLICIES[name]
    assert differences(
        run_search(ours, game_name, False, batch, simulations, settings),
        run_search(theirs, game_name, False, batch, simulations, settings)) == []


@pytest.mark.parametrize("game_name", ["tictactoe", "connect4", "othello"])
def test_equal_to_mctx_with_the_shipped_models(game_name):
    for name, simulations in (("agent", 64), ("gumbel", 32)):
        ours, theirs, settings = POLICIES[name]
        assert differences(
            run_search(ours, game_name, True, 8, simulations, settings),
            run_search(theirs, game_name, True, 8, simulations, settings)) == [], name


def test_a_perturbed_search_fails_the_comparison():
    """The control: the comparison sees another c_puct and one simulation fewer."""
    ours, theirs, settings = POLICIES["puct"]
    reference = run_search(theirs, "connect4", False, 16, 32, settings)
    other_c = run_search(ours, "connect4", False, 16, 32, {**settings, "pb_c_init": 2.0})
    assert "visit counts" in differences(other_c, reference)
    fewer = run_search(ours, "connect4", False, 16, 31, settings)
    assert "visit counts" in differences(fewer, reference)


@pytest.mark.parametrize("game_name", ["connect4", "othello"])
def test_every_reply_is_tried_before_any_twice_one_and_three_plies_down(game_name):
    """The agent's one departure from mctx: at the opponent's nodes one and three plies below
    the root, every legal reply has a visit before any has two. mctx's rule (reply_depth 0)
    skips replies it finds unlikely there; with reply_depth 1 it still does three plies down."""
    agent = replies_by_depth(game_name, search.REPLY_DEPTH)
    for depth in (1, 3):
        revisited, skipped = agent[depth]
        assert revisited > 0 and skipped == 0, (depth, agent)
    assert replies_by_depth(game_name, 0)[1][1] > 0
    assert replies_by_depth(game_name, 1)[3][1] > 0


def replies_by_depth(game_name: str, reply_depth: int) -> dict[int, tuple[int, int]]:
    """{depth: (nodes at that depth with a child visited twice, those of them with a legal
    action left unvisited)} after the agent's search of 512 simulations with the shipped model
    and `reply_depth`."""
    game = games.make(game_name)
    apply, params = network(game_name, True)
    states = positions(game_name, 8)
    root = search.root_output(game, apply, params, states)
    tree = jax.device_get(jax.jit(tree_search.gumbel_muzero_policy, static_argnums=(3, 4),
                                  static_argnames=("max_num_considered_actions", "reply_depth"))(
        params, jax.random.key(3), root, search.make_recurrent_fn(game, apply), 512,
        ~states.legal_action_mask, max_num_considered_actions=game.num_actions,
        gumbel_scale=0.0, reply_depth=reply_depth).search_tree)
    counts = {depth: [0, 0] for depth in (1, 2, 3)}
    for b, node in zip(*np.nonzero(tree.node_visits > 0)):
        depth, parent = 0, node
        while parent != tree.ROOT_INDEX:
            depth, parent = depth + 1, tree.parents[b, parent]
        legal = tree.children_prior_logits[b, node] > np.finfo(np.float32).min / 2
        visits = tree.children_visits[b, node]
        if depth in counts and legal.any() and visits.max() > 1:
            counts[depth][0] += 1
            counts[depth][1] += int(np.any(visits[legal] == 0))
    return {depth: tuple(count) for depth, count in counts.items()}


# --- cost: no whole-tree work inside the search's loops ---------------------------------------

BATCH, SIMULATIONS = 128, 512
# Leading dimensions of tree-sized arrays: mctx's layout [B, N, ...], tree_search's node-major
# table [N, B, fields] and its per-level path record [S, B, ...].
TREE_PREFIXES = ((BATCH, SIMULATIONS + 1), (SIMULATIONS + 1, BATCH), (SIMULATIONS, BATCH))
_DIMS = re.compile(r"^[a-z]+\d*\[([\d,]*)\]")


def is_tree_sized(shape: str) -> bool:
    """Whether an HLO array type such as `f32[513,128,47]{2,1,0}` is tree-sized."""
    match = _DIMS.match(shape)
    dims = tuple(int(d) for d in match.group(1).split(",") if d) if match else ()
    return any(dims[:len(prefix)] == prefix for prefix in TREE_PREFIXES)


def zero_cost_search(policy):
    """The search over the benchmark's zero-cost network (a one-number embedding), compiled."""
    root, recurrent_fn, params = search_bench.zero_cost(BATCH)
    run = jax.jit(lambda key: policy(params, key, root, recurrent_fn,
                                     num_simulations=SIMULATIONS).action_weights)
    return run.lower(jax.random.key(0)).compile().as_text()


_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$")
_INSTRUCTION = re.compile(r"^\s+(?:ROOT )?%([\w.\-]+) = (\S+) ([\w\-]+)\((.*?)\)(.*)$")
_CALLS = re.compile(r"(?:calls|body|condition|to_apply|true_computation|false_computation)"
                    r"=%([\w.\-]+)")
_IN_PLACE = ("dynamic-update-slice", "scatter")
_NAMES = ("parameter", "get-tuple-element", "bitcast", "tuple", "while", "call", "conditional")


def tree_sized_work(hlo_text: str) -> list[str]:
    """Instructions inside while-loop bodies (and what they call: fusions, nested loops) that
    produce a whole tree-shaped array, other than an in-place update (a dynamic-update-slice
    or scatter, or a fusion whose root is one) or an op that only names a buffer."""
    computations, current = {}, None  # name -> its lines
    for line in hlo_text.splitlines():
        if match := _COMPUTATION.match(line):
            current = computations.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
    roots = {name: match.group(3) for name, lines in computations.items() for line in lines
             if line.lstrip().startswith("ROOT") and (match := _INSTRUCTION.match(line))}
    callees = {name: {called for line in lines for called in _CALLS.findall(line)}
               for name, lines in computations.items()}
    in_loops = set(re.findall(r"\bbody=%([\w.\-]+)", hlo_text))
    frontier = list(in_loops)
    while frontier:  # everything a loop body calls runs once per iteration too
        for called in callees.get(frontier.pop(), ()):
            if called not in in_loops:
                in_loops.add(called)
                frontier.append(called)
    found = []
    for name in in_loops:
        for line in computations.get(name, ()):
            if not (match := _INSTRUCTION.match(line)):
                continue  # tuple-typed: a loop, call or tuple, which names buffers
            shape, opcode = match.group(2), match.group(3)
            if not is_tree_sized(shape):
                continue
            if opcode in _IN_PLACE or opcode in _NAMES:
                continue
            if opcode == "fusion" and any(roots.get(c) in _IN_PLACE for c in _CALLS.findall(line)):
                continue
            found.append(line.strip()[:160])
    return found


@pytest.fixture(scope="module")
def mctx_hlo():
    return zero_cost_search(functools.partial(mctx.muzero_policy, dirichlet_fraction=0.0))


def test_no_tree_sized_work_inside_the_search_loops():
    for policy in (functools.partial(tree_search.muzero_policy, dirichlet_fraction=0.0),
                   tree_search.gumbel_muzero_policy):
        assert tree_sized_work(zero_cost_search(policy)) == []


def test_the_check_flags_mctx(mctx_hlo):
    """The control: plain mctx copies its tree inside its loops, and the check says so."""
    flagged = tree_sized_work(mctx_hlo)
    assert any(" copy(" in line for line in flagged), flagged
