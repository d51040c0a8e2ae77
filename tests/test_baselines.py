"""Baseline agents: legal, reproducible, and doing what their names promise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_trajectory

from cartridge_jax import games
from cartridge_jax.games.base import index_among
from cartridge_jax.opponents import baselines


def choices(game, agent_name, state, samples=200):
    agent = jax.jit(jax.vmap(baselines.make_agent(game, agent_name), in_axes=(0, None)))
    return set(np.asarray(agent(jax.random.split(jax.random.key(0), samples), state)).tolist())


@pytest.mark.parametrize("name", games.names())
def test_random_agent_plays_every_legal_move_and_nothing_else(name):
    game = games.make(name)
    states, _, _ = random_trajectory(name)
    state = jax.tree.map(lambda x: x[3, 0], states)
    legal = set(np.flatnonzero(np.asarray(state.legal_action_mask)).tolist())
    assert choices(game, "random", state) == legal


@pytest.mark.parametrize("name, moves, expected", [
    ("tictactoe", "1425", {2}),  # X wins at c1 rather than blocking O's c2
    ("tictactoe", "152", {2}),  # O must block X's c1
    ("connect4", "112233", {3}),  # Red completes the bottom row
    ("connect4", "11223", {3}),  # Yellow blocks it
])
def test_greedy_wins_then_blocks(name, moves, expected):
    game = games.make(name)
    state = game.from_text(moves)
    assert choices(game, "greedy", state) == expected


def test_greedy_othello_flips_the_most_discs():
    game = games.make("othello")
    states, _, _ = random_trajectory("othello")
    agent = jax.jit(baselines.make_agent(game, "greedy"))
    step_all = jax.jit(jax.vmap(game.step, in_axes=(None, 0)))
    checked = 0
    for ply in range(0, 50, 7):
        for index in range(8):
            state = jax.tree.map(lambda x: x[ply, index], states)
            if bool(state.terminated):
                continue
            # Brute force: the mover's disc count after each move (plane 1 of the next view).
            after = step_all(state, jnp.arange(game.num_actions))
            discs = np.asarray(jax.vmap(game.observe)(after)[..., 1].sum(axis=(1, 2)))
            legal = np.asarray(state.legal_action_mask)
            best = discs[legal].max()
            action = int(agent(jax.random.key(ply * 8 + index), state))
            assert legal[action] and discs[action] == best
            checked += 1
    assert checked > 20


def duel_score(game, first, second, num_games=256, seed=0):
    """Mean result for the agent moving first, over `num_games` batched games (+1 win, -1 loss)."""
    agents = [baselines.make_agent(game, first), baselines.make_agent(game, second)]

    @jax.jit
    def play(key):
        state = jax.vmap(game.init)(jax.random.split(key, num_games))

        def move(state, key):
            keys = jax.random.split(key, num_games)
            actions = jnp.where(state.current_player == 0,
                                jax.vmap(agents[0])(keys, state), jax.vmap(agents[1])(keys, state))
            state = jax.vmap(game.step)(state, actions)
            return state, state.rewards[:, 0]

        _, rewards = jax.lax.scan(move, state, jax.random.split(key, 2 * game.rows * game.cols + 1))
        return rewards.sum(axis=0)

    return float(play(jax.random.key(seed)).mean())


@pytest.mark.parametrize("name", ["tictactoe", "connect4"])
def test_greedy_beats_random(name):
    game = games.make(name)
    assert duel_score(game, "greedy", "random") > 0.6
    assert duel_score(game, "random", "greedy") < -0.3


def test_index_among_splits_the_unit_interval_evenly_over_the_allowed_indices():
    """index_among (self-play's random openings) maps [0, 1) onto the allowed indices in equal
    parts: any point well inside the k-th of n equal parts picks the k-th allowed index."""
    rng = np.random.default_rng(0)
    pick = jax.jit(jax.vmap(index_among, in_axes=(0, None)))
    for _ in range(20):
        allowed = rng.random(65) < rng.uniform(0.05, 0.9)
        allowed[rng.integers(65)] = True
        indices = np.flatnonzero(allowed)
        n = len(indices)
        parts = np.arange(n, dtype=np.float32)
        for offset in (0.5, 0.01, 0.99):
            uniforms = ((parts + offset) / n).astype(np.float32)
            assert np.array_equal(np.asarray(pick(uniforms, allowed)), indices)
