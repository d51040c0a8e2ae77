"""Symmetries map (observation, policy, legal mask) to an equivalent position of the real rules.

For each symmetry that fixes the start position, replaying the mapped moves of random games must
give exactly the mapped observation and legal mask, and the same result. (Othello's other four
symmetries swap the start's colours; tests/test_othello.py checks all eight through its text
format.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_trajectory

from cartridge_jax import games


def start_preserving_symmetries(game):
    start = game.init(jax.random.key(0))
    obs = game.observe(start)
    mapped, _, _ = game.symmetries(obs, jnp.zeros(game.num_actions), start.legal_action_mask)
    return [s for s in range(game.num_symmetries) if np.array_equal(mapped[s], obs)]


@pytest.mark.parametrize("name", games.names())
def test_symmetric_replay_matches_mapped_example(name):
    game = games.make(name)
    states, actions, observations = random_trajectory(name, seed=3)
    symmetries = start_preserving_symmetries(game)
    assert len(symmetries) == {"tictactoe": 8, "connect4": 2, "othello": 4}[name]
    policy = jax.random.uniform(jax.random.key(1), (game.num_actions,))
    replay = jax.jit(lambda moves: jax.lax.scan(
        lambda s, a: (jax.vmap(game.step)(s, a),) * 2,
        jax.vmap(game.init)(jax.random.split(jax.random.key(0), moves.shape[1])), moves)[1])
    for s in symmetries:
        # Action a of the original board is the action whose mapped source is a.
        new_action = np.argsort(game.action_permutations[s])
        mapped_states = jax.tree.map(np.asarray, replay(jnp.asarray(new_action[actions])))
        for ply in (1, 3, 6):
            for game_index in range(4):
                obs = observations[ply, game_index]
                mask = states.legal_action_mask[ply, game_index]
                sym_obs, sym_policy, sym_mask = game.symmetries(obs, policy, mask)
                mapped_obs = game.observe(jax.tree.map(lambda x: x[ply - 1, game_index], mapped_states))
                assert np.array_equal(mapped_obs, sym_obs[s])
                assert np.array_equal(mapped_states.legal_action_mask[ply - 1, game_index], sym_mask[s])
                # The mapped move keeps the original move's probability.
                assert np.array_equal(np.asarray(sym_policy[s])[new_action], policy)
        assert np.array_equal(mapped_states.rewards[-1], states.rewards[-1]), "same results"
