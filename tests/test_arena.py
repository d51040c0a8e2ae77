"""Arena bookkeeping: colours alternate, W/D/L add up and are seen from the right side, and an
agent against itself scores one half."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_trajectory

from cartridge_jax import games, opponents
from cartridge_jax.config import Config, ModelConfig
from cartridge_jax.evaluation import agents, arena
from cartridge_jax.model import nets

KEY = jax.random.key(0)


def lowest_legal(key, states):
    return jnp.argmax(states.legal_action_mask, axis=-1).astype(jnp.int32)


def forfeit(key, states):
    return jnp.full(states.current_player.shape, -1, jnp.int32)  # illegal: the mover loses


def legal_only_first(key, states):
    """Plays the lowest legal move as the first player and forfeits as the second."""
    return jnp.where(states.current_player == 0, lowest_legal(key, states), -1)


def counts(game, agent, opponent, num_games=8):
    return arena.result(arena.match(game, agent, opponent, num_games, KEY))


@pytest.mark.parametrize("name", games.names())
def test_sides_alternate_every_ply(name):
    """What arena.play relies on to ask each agent for its half only."""
    states, _, _ = random_trajectory(name)
    live = ~states.terminated  # [T+1, B]
    ply = np.arange(live.shape[0])[:, None]
    assert np.all(states.current_player[live] == np.broadcast_to(ply % 2, live.shape)[live])


def test_wins_and_losses_are_from_the_agents_side():
    game = games.make("connect4")
    assert counts(game, lowest_legal, forfeit) == arena.MatchResult(8, 0, 0)
    assert counts(game, forfeit, lowest_legal) == arena.MatchResult(0, 0, 8)


def test_the_agent_plays_each_colour_in_half_the_games():
    # Both play the lowest legal column, so whoever moves first completes the bottom row; the
    # agent forfeits whenever it is second. First in half the games: 4 wins, 4 losses.
    game = games.make("connect4")
    assert counts(game, legal_only_first, lowest_legal) == arena.MatchResult(4, 0, 4)


def test_a_deterministic_agent_against_itself_scores_exactly_one_half():
    result = counts(games.make("connect4"), lowest_legal, lowest_legal, num_games=10)
    assert result.wins == result.losses == 5 and result.score == 0.5


def test_a_model_against_itself_scores_about_one_half():
    game = games.make("tictactoe")
    config = Config().model_copy(update={"model": ModelConfig(kind="mlp", mlp_hidden=(16,))})
    network = nets.make_network(config.model, game)
    params = nets.init_params(network, game, jax.random.key(3))
    agent = agents.search_agent(game, network.apply, params, 8)
    result = arena.match_summary(game, agent, agent, 64, KEY)
    assert result["wins"] + result["draws"] + result["losses"] == 64
    assert abs(result["score"] - 0.5) <= 0.1


def test_random_against_itself_scores_about_one_half():
    game = games.make("connect4")
    result = arena.match_summary(game, opponents.builtin_agent(game, "random"), "random", 400,
                                  KEY)
    assert result["wins"] + result["draws"] + result["losses"] == 400
    assert result["score_low"] < 0.5 < result["score_high"]
    assert abs(result["score"] - 0.5) < 0.08
