"""The mctx glue: tactics with an untrained net, the two-player sign convention, every [mcts]
knob reaching the search, and no NaN from masked logits at terminal positions.

Compilation dominates the cost of these tests, so each search configuration is jitted once
(module-level caches) and shared: the [mcts] knobs that mctx takes as numbers travel as traced
values, so one compilation serves every value of them.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_trajectory

from cartridge_jax import games
from cartridge_jax.config import Config
from cartridge_jax import opponents
from cartridge_jax.evaluation import arena
from cartridge_jax.model import nets, search, tree_search

TICTACTOE = games.make("tictactoe")
CONNECT4 = games.make("connect4")
CONFIG = Config()


def uniform_apply(num_actions):
    """The uniform untrained net: zero logits and value 0 for any batch."""
    return lambda params, obs: (jnp.zeros((obs.shape[0], num_actions)), jnp.zeros(obs.shape[0]))


def stack(states):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)


def repeat(state, copies):
    return jax.tree.map(lambda leaf: jnp.repeat(leaf[None], copies, axis=0), state)


def positions(game, texts):
    """The positions after each move string, in that order."""
    return stack([game.from_text(text) for text in texts])


def pieces(states):
    return np.asarray((states.board != 0).sum(-1))


# ---------------------------------------------------------------------------------------------
# Tactics: the agent (Gumbel MuZero without noise) with a uniform net.

# A uniform net gives no hint, so a threat is seen only once the search has tried every reply:
# Sequential Halving's first phase gives each of 7 Connect 4 moves floor(S / (3 * 7)) visits,
# and with 128 simulations (6 visits) it dropped Connect 4's only block (the 7th reply, the
# winning one, was never tried). 200 simulations give 9.
AGENT_SIMULATIONS = 200


@functools.lru_cache(maxsize=None)
def uniform_agent(game_name: str, simulations: int = AGENT_SIMULATIONS):
    game = games.make(game_name)
    apply_fn = uniform_apply(game.num_actions)

    @jax.jit
    def run(key, states):
        result = search.agent_search(game, apply_fn, None, key, states, simulations=simulations)
        return result.action, result.policy_target, result.root_value, result.visit_counts

    return run


# (moves from the start, the only good move as a 0-based action, "win" or "block").
# TicTacToe actions are cells, row-major from a1.
TICTACTOE_TACTICS = [
    ("1253", 8, "win"),  # X wins on the diagonal a1-b2-c3
    ("15923", 7, "win"),  # O wins down the middle column; X's own threat at c2 is too late
    ("1425", 2, "win"),  # X wins on the top row before O can win on the middle row
    ("152", 2, "block"),  # O blocks X's top row
    ("524", 5, "block"),  # O blocks X's middle row
    ("5193", 1, "block"),  # X blocks O's top row
]

# Connect 4 actions are columns 0-6 (move strings use 1-7).
CONNECT4_TACTICS = [
    ("121212", 0, "win"),  # Red completes four in column 1 (Yellow threatens column 2 too)
    ("12121", 0, "block"),  # Yellow blocks column 1
    ("112233", 3, "win"),  # Red completes the bottom row
    ("11223", 3, "block"),  # Yellow blocks the bottom row (the left edge closes the other end)
    ("717273", 6, "win"),  # Red completes four in column 7 before Yellow's bottom row
    ("71727", 6, "block"),  # Yellow blocks column 7
]


@pytest.mark.parametrize(
    "game_name, tactics", [("tictactoe", TICTACTOE_TACTICS), ("connect4", CONNECT4_TACTICS)]
)
def test_agent_wins_at_once_and_blocks_with_a_uniform_net(game_name, tactics):
    game = games.make(game_name)
    states = positions(game, [text for text, _, _ in tactics])
    action, policy_target, root_value, _ = uniform_agent(game_name)(jax.random.key(0), states)
    expected = np.array([move for _, move, _ in tactics])
    chosen = np.asarray(action)
    wrong = {tactics[i][0]: int(chosen[i]) for i in np.flatnonzero(chosen != expected)}
    assert not wrong, f"positions -> moves played instead of the tactic: {wrong}"
    assert np.all(np.isfinite(policy_target)) and np.all(np.isfinite(root_value))
    # Where the side to move wins at once, the search's value of the position says so.
    wins = np.array([kind == "win" for _, _, kind in tactics])
    assert np.all(np.asarray(root_value)[wins] > 0.5), np.asarray(root_value)[wins]


# A network blind to Red's winning column (its logit there -8 when Red is to move, 0 elsewhere;
# value 0): below a root move of Yellow's that leaves the threat open, Red's win has a prior of
# ~0.2%, and Gumbel's interior rule (visit frequencies tracking softmax(logits + completed Q))
# never visits it, at any simulation count. The agent's `reply_depth` visits every reply to a
# root move once before any twice, so the win is seen and the threat blocked. (A uniform net shows
# no difference: with equal priors Gumbel's rule also tries every reply first, in index order.)
BLIND_LOGIT = -8.0
BLOCKS = [("12121", 0), ("11223", 3), ("71727", 6)]  # Yellow to move: Red threatens 4
BLIND_SIMULATIONS = 256


def blind_to_red_apply(params, obs):
    """params [B, A]: each game's logits for Red (an even number of pieces: Red to move)."""
    red_to_move = obs.sum(axis=(1, 2, 3)) % 2 == 0  # [B]
    return jnp.where(red_to_move[:, None], params, 0.0), jnp.zeros(obs.shape[0])


@functools.partial(jax.jit, static_argnames="reply_depth")
def blind_search(params, states, *, reply_depth):
    """The agent's search over `blind_to_red_apply`, with replies visited `reply_depth` deep."""
    root = search.root_output(CONNECT4, blind_to_red_apply, params, states)
    return tree_search.gumbel_muzero_policy(
        params, jax.random.key(0), root, search.make_recurrent_fn(CONNECT4, blind_to_red_apply),
        num_simulations=BLIND_SIMULATIONS, invalid_actions=~states.legal_action_mask,
        max_num_considered_actions=CONNECT4.num_actions, gumbel_scale=0.0,
        reply_depth=reply_depth).action


def test_agent_sees_the_reply_its_network_does_not_expect():
    states = positions(CONNECT4, [text for text, _ in BLOCKS])
    blocks = np.array([move for _, move in BLOCKS])
    params = jnp.zeros((len(BLOCKS), CONNECT4.num_actions)).at[
        np.arange(len(BLOCKS)), blocks].set(BLIND_LOGIT)
    # mctx's rule: Red's win is never visited, every move looks alike and none blocks.
    unseen = np.asarray(blind_search(params, states, reply_depth=0))
    assert not np.any(unseen == blocks), unseen
    # The agent (search.agent_search sets the rule) blocks every threat.
    agent = jax.jit(functools.partial(search.agent_search, CONNECT4, blind_to_red_apply,
                                      simulations=BLIND_SIMULATIONS))
    seen = np.asarray(agent(params, jax.random.key(0), states).action)
    assert np.array_equal(seen, blocks), seen


def test_agent_is_deterministic_and_spends_its_visits_by_sequential_halving():
    """Another key changes nothing; the root visits follow Sequential Halving's schedule."""
    network, params = small_connect4_net()
    states = positions(CONNECT4, ["", "4453", "121212"])  # 7 legal moves each
    agent = jax.jit(functools.partial(search.agent_search, CONNECT4, network.apply,
                                      simulations=32))
    first, second = (jax.tree.map(np.asarray, agent(params, jax.random.key(key), states))
                     for key in (0, 1))
    for name in ("action", "policy_target", "root_value", "visit_counts"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
    # Every move once (7 simulations), the best 3 three more times each (floor(32 / (3 * 3))),
    # then the best 2 until the simulations run out (floor(32 / (3 * 2)) = 5 a phase).
    assert np.array_equal(np.sort(first.visit_counts, axis=-1),
                          np.tile([1, 1, 1, 1, 4, 12, 12], (3, 1)))
    # The move is one of the two finalists; the improved policy is a distribution.
    assert np.all(first.visit_counts[np.arange(3), first.action] == 12)
    assert np.allclose(first.policy_target.sum(-1), 1)


def test_agent_with_no_simulations_plays_the_best_legal_prior_move():
    game = TICTACTOE
    # Logits rise with the action index, so the best move overall (cell 8) is taken: the agent
    # must fall back on the best legal one.
    apply_fn = lambda params, obs: (  # noqa: E731
        jnp.broadcast_to(jnp.arange(9.0), (obs.shape[0], 9)),
        jnp.zeros(obs.shape[0]),
    )
    states = stack([game.from_text(text) for text in ["", "9", "98", "1298", "95187"]])
    result = search.agent_search(game, apply_fn, None, jax.random.key(0), states, simulations=0)
    assert np.array_equal(result.action, [8, 7, 6, 6, 5])
    legal = np.asarray(states.legal_action_mask)
    target = np.asarray(result.policy_target)
    assert np.all(target[~legal] == 0) and np.allclose(target.sum(-1), 1)

    # A random linear net: the argmax of its logits over legal moves.
    apply_fn = lambda weights, obs: (  # noqa: E731
        obs.reshape(obs.shape[0], -1) @ weights, jnp.zeros(obs.shape[0])
    )
    weights = jax.random.normal(jax.random.key(1), (18, 9))
    result = search.agent_search(game, apply_fn, weights, jax.random.key(0), states,
                                 simulations=0)
    logits, _ = apply_fn(weights, jax.vmap(game.observe)(states))
    legal = np.asarray(states.legal_action_mask)
    expected = np.argmax(np.where(legal, np.asarray(logits), -np.inf), axis=-1)
    assert np.array_equal(result.action, expected)


# ---------------------------------------------------------------------------------------------
# The sign convention: discount -1 makes an untrained net beat random; +1 is visibly worse.


def signed_recurrent_fn(real_make_recurrent_fn):
    """make_recurrent_fn whose discount is multiplied by a sign carried in the params.

    params = (network params, sign): sign +1 leaves the real recurrent_fn's output untouched,
    -1 flips the discount (the deliberate bug). Carrying the sign as data lets both variants
    share one compilation.
    """

    def make(game, apply_fn):
        real = real_make_recurrent_fn(game, apply_fn)

        def recurrent_fn(params, key, action, states):
            output, next_states = real(params, key, action, states)
            return output.replace(discount=params[1] * output.discount), next_states

        return recurrent_fn

    return make


def test_untrained_net_with_discount_minus_one_beats_random_and_plus_one_is_worse(monkeypatch):
    game = TICTACTOE
    network = nets.make_network(CONFIG.model, game)
    params = nets.init_params(network, game, jax.random.key(0))
    apply_fn = lambda params, obs: network.apply(params[0], obs)  # noqa: E731
    monkeypatch.setattr(search, "make_recurrent_fn", signed_recurrent_fn(search.make_recurrent_fn))
    num_games = 128

    @jax.jit
    def match(params_and_sign, key):
        def agent(key, states):
            return search.agent_search(
                game, apply_fn, params_and_sign, key, states, simulations=64
            ).action

        return arena.play(game, agent, opponents.builtin_agent(game, "random"), num_games, key)

    key = jax.random.key(1)
    right = arena.result(match((params, jnp.float32(1.0)), key))
    wrong = arena.result(match((params, jnp.float32(-1.0)), key))
    assert right.score > 0.75, right
    # Measured on these seeds: right 104/18/6 (score 0.88), wrong 91/1/36 (score 0.72).
    assert right.score > wrong.score + 0.1, (right, wrong)
    assert 2 * right.losses < wrong.losses, (right, wrong)


# ---------------------------------------------------------------------------------------------
# Every [mcts] knob reaches the search.

KNOB_BATCH = 64
KNOB_POSITION = "4453"  # Connect 4, 4 moves in, Red to move
SMALL_MODEL = CONFIG.model.model_copy(update=dict(kind="mlp", mlp_hidden=(32,), value_hidden=16))
# The knobs mctx takes as numbers: traced, so changing them costs no compilation.
TRACED_KNOBS = (
    "c_puct", "dirichlet_alpha", "dirichlet_fraction", "temperature", "temperature_drop_move",
    "final_temperature", "gumbel_scale",
)


@functools.lru_cache(maxsize=None)
def small_connect4_net():
    network = nets.make_network(SMALL_MODEL, CONNECT4)
    params = nets.init_params(network, CONNECT4, jax.random.key(0))
    return network, params


@functools.lru_cache(maxsize=None)
def selfplay_searcher(kind: str, simulations: int, max_considered_actions: int):
    """Jitted selfplay_search on Connect 4 with the small MLP, for one static configuration."""
    network, _ = small_connect4_net()

    @jax.jit
    def run(knobs, params, key, states, move_number):
        mcts = CONFIG.mcts.model_copy(
            update=dict(
                search=kind, simulations=simulations,
                max_considered_actions=max_considered_actions, **knobs,
            )
        )
        result = search.selfplay_search(
            CONNECT4, network.apply, mcts, params, key, states, move_number
        )
        return result.action, result.policy_target, result.root_value

    return run


def run_search(kind="puct", simulations=32, max_considered_actions=16, *, params=None,
               states=None, move_number=None, key=0, **knobs):
    """SearchResult fields (action, policy_target, root_value) as numpy, knobs over defaults."""
    _, random_params = small_connect4_net()
    if states is None:
        states = repeat(CONNECT4.from_text(KNOB_POSITION), KNOB_BATCH)
    if move_number is None:
        move_number = jnp.asarray(pieces(states), jnp.int32)
    values = {name: getattr(CONFIG.mcts, name) for name in TRACED_KNOBS} | knobs
    traced = {
        name: jnp.asarray(value, jnp.int32 if name == "temperature_drop_move" else jnp.float32)
        for name, value in values.items()
    }
    run = selfplay_searcher(kind, simulations, max_considered_actions)
    out = run(traced, random_params if params is None else params, jax.random.key(key), states,
              move_number)
    return tuple(np.asarray(x) for x in out)


def entropy(p):
    return float(-np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)))


def distinct_rows(x):
    return len(np.unique(np.round(x, 6), axis=0))


def test_c_puct_reaches_the_search():
    _, low, _ = run_search(c_puct=0.1, dirichlet_fraction=0.0)
    _, high, _ = run_search(c_puct=10.0, dirichlet_fraction=0.0)
    assert not np.allclose(low, high)
    # More exploration spreads the visits (the random net's prior is near uniform).
    assert entropy(high[0]) > entropy(low[0]) + 0.5, (low[0], high[0])


def test_dirichlet_fraction_reaches_the_search():
    # Without noise the visits depend on the position only; with noise, on the key per game.
    _, clean, _ = run_search(dirichlet_fraction=0.0)
    _, noisy, _ = run_search(dirichlet_fraction=0.5)
    assert distinct_rows(clean) == 1
    assert distinct_rows(noisy) > KNOB_BATCH // 4


def test_dirichlet_alpha_reaches_the_search():
    _, spiky, _ = run_search(dirichlet_fraction=0.5, dirichlet_alpha=0.03)
    _, flat, _ = run_search(dirichlet_fraction=0.5, dirichlet_alpha=3.0)
    assert not np.allclose(spiky, flat)


def most_visited_only(action, policy):
    """Every game played one of the most visited moves (visits are equal across rows here)."""
    return np.all(policy[0][action] == policy[0].max())


def test_temperature_reaches_the_move_choice():
    # No noise: every row has the same visits, so only the temperature spreads the moves.
    cold, policy, _ = run_search(dirichlet_fraction=0.0, c_puct=10.0, temperature=0.01)
    hot, _, _ = run_search(dirichlet_fraction=0.0, c_puct=10.0, temperature=10.0)
    assert distinct_rows(policy) == 1
    assert most_visited_only(cold, policy)
    assert len(set(hot.tolist())) >= 4


def test_temperature_drops_after_temperature_drop_move():
    half = KNOB_BATCH // 2
    move_number = jnp.where(jnp.arange(KNOB_BATCH) < half, 0, 20).astype(jnp.int32)
    common = dict(dirichlet_fraction=0.0, c_puct=10.0, temperature=10.0, final_temperature=0.01,
                  move_number=move_number)
    action, policy, _ = run_search(temperature_drop_move=10, **common)
    assert len(set(action[:half].tolist())) >= 4  # early moves: hot
    assert most_visited_only(action[half:], policy)  # late moves: cold
    late, _, _ = run_search(temperature_drop_move=30, **common)
    assert len(set(late[half:].tolist())) >= 4  # the drop has not come yet


def test_final_temperature_reaches_the_move_choice():
    common = dict(dirichlet_fraction=0.0, c_puct=10.0, temperature=1.0, temperature_drop_move=0)
    cold, policy, _ = run_search(final_temperature=0.01, **common)
    hot, _, _ = run_search(final_temperature=10.0, **common)
    assert most_visited_only(cold, policy)
    assert len(set(hot.tolist())) >= 4


def test_gumbel_scale_reaches_the_search():
    still, still_policy, _ = run_search("gumbel", gumbel_scale=0.0)
    noisy, noisy_policy, _ = run_search("gumbel", gumbel_scale=1.0)
    assert len(set(still.tolist())) == 1 and distinct_rows(still_policy) == 1
    assert len(set(noisy.tolist())) >= 3 and distinct_rows(noisy_policy) > 1


# Red wins at once in column 7 (action 6); with a uniform net the search must find it.
WIN_IN_ONE = "717273"


def uniform_connect4_params():
    """All-zero weights: the small MLP then outputs zero logits and value 0 (a uniform net)."""
    _, params = small_connect4_net()
    return jax.tree.map(jnp.zeros_like, params)


def win_rate(**config):
    states = repeat(CONNECT4.from_text(WIN_IN_ONE), KNOB_BATCH)
    action, policy, _ = run_search("gumbel", params=uniform_connect4_params(), states=states,
                                   **config)
    return float(np.mean(action == 6)), policy


def test_gumbel_search_plays_the_win_in_one_with_a_uniform_net():
    # Without Gumbel noise the search is deterministic and must play the win.
    rate, policy = win_rate(gumbel_scale=0.0)
    assert rate == 1.0
    assert np.all(np.argmax(policy, axis=-1) == 6)
    # With it, the final pick is argmax(gumbel + logits + sigma(q)): a Gumbel gap above
    # sigma's ~5 can (rarely, by design) overrule the win. The policy target never does.
    rate, policy = win_rate()
    assert rate >= 0.9
    assert np.all(np.argmax(policy, axis=-1) == 6)


def test_max_considered_actions_reaches_the_search():
    # The root considers the top-k moves by gumbel + logits: with uniform logits, k = 2 finds
    # the winning move only when its Gumbel draw is among the best two (~2/7 of the games).
    narrow, _ = win_rate(max_considered_actions=2)
    wide, _ = win_rate(max_considered_actions=16)
    assert narrow < 0.6 and wide >= 0.9, (narrow, wide)


def test_simulations_reach_the_search():
    # Two simulations visit two of the seven moves: the win is found ~2/7 of the time.
    few, _ = win_rate(simulations=2)
    enough, _ = win_rate(simulations=32)
    assert few < 0.6 and enough >= 0.9, (few, enough)


# ---------------------------------------------------------------------------------------------
# Masked logits at terminal positions: the root or a node inside the tree.


def near_the_end(batch):
    """`batch` Connect 4 positions from random games: half one move before the game's end, a
    quarter finished, a quarter early in the game (repeated to fill `batch`)."""
    states, _, _ = random_trajectory("connect4")  # [T+1, G]
    num_games = states.terminated.shape[1]
    last_live = np.argmax(states.terminated, axis=0) - 1  # [G]: the ply before the game ended
    half, quarter = num_games // 2, num_games // 4
    plies = np.concatenate([last_live[:half], last_live[half:][:quarter] + 1, np.full(quarter, 3)])
    rows = np.arange(batch) % len(plies)
    out = jax.tree.map(lambda leaf: jnp.asarray(leaf[plies[rows], rows]), states)
    kinds = np.repeat([0, 1, 2], [half, quarter, quarter])[rows]
    assert np.array_equal(out.terminated, kinds == 1)
    return out


@pytest.mark.parametrize("kind", ["puct", "gumbel"])
def test_search_outputs_are_finite_near_and_at_the_end(kind):
    states = near_the_end(KNOB_BATCH)
    for params in (None, uniform_connect4_params()):
        action, policy, value = run_search(kind, params=params, states=states)
        assert np.all(np.isfinite(policy)) and np.all(np.isfinite(value))
        live = ~np.asarray(states.terminated)
        assert np.all(np.asarray(states.legal_action_mask)[live, action[live]])
        assert np.allclose(policy[live].sum(-1), 1)


def test_agent_outputs_are_finite_near_and_at_the_end():
    states = near_the_end(KNOB_BATCH)
    action, policy, value, _ = uniform_agent("connect4")(jax.random.key(0), states)
    assert np.all(np.isfinite(policy)) and np.all(np.isfinite(value))
    live = ~np.asarray(states.terminated)
    assert np.all(np.asarray(states.legal_action_mask)[live, np.asarray(action)[live]])
