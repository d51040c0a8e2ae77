"""Helpers shared by test modules: batched random games, compiled once per game and seed."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from cartridge_jax import games
from cartridge_jax.config import Config
from cartridge_jax.model import nets
from cartridge_jax.training import selfplay

BATCH = 32


def max_plies(game: games.Game) -> int:
    # Every move fills a cell, except Othello's passes, which never come twice in a row.
    return 2 * game.rows * game.cols + 1


@functools.lru_cache(maxsize=None)
def random_trajectory(name: str, seed: int = 0):
    """States and actions of BATCH random games, stepped past their end (no auto-reset).

    Returns numpy (states [T+1, B, ...], actions [T, B], observations [T+1, B, ...]).
    """
    game = games.make(name)
    plies = max_plies(game)

    @jax.jit
    def play(key):
        start = jax.vmap(game.init)(jax.random.split(key, BATCH))

        def move(state, key):
            logits = jnp.where(state.legal_action_mask, 0.0, jnp.finfo(jnp.float32).min)
            action = jax.random.categorical(key, logits)  # [B]
            next_state = jax.vmap(game.step)(state, action)
            return next_state, (next_state, action)

        _, (states, actions) = jax.lax.scan(move, start, jax.random.split(key, plies))
        states = jax.tree.map(lambda s, t: jnp.concatenate([s[None], t]), start, states)
        observations = jax.vmap(jax.vmap(game.observe))(states)
        return states, actions, observations

    return jax.tree.map(np.asarray, play(jax.random.key(seed)))


# A tiny TicTacToe training configuration shared by the training-loop tests, so they share
# compilations through the persistent cache. Everything a test relies on is set here
# ("preset none": no preset fills in the rest); tests change keys with flags.
TINY_TOML = """\
[common]
game = "tictactoe"
preset = "none"
seed = 0

[model]
kind = "mlp"
mlp_hidden = [16]
value_hidden = 16

[mcts]
simulations = 4
max_considered_actions = 4

[selfplay]
games = 8
moves_per_iteration = 8

[training]
iterations = 2
steps_per_iteration = 4
batch_size = 16
replay_capacity = 512
max_checkpoints = 3

[evaluation]
games = 4
simulations = 4
interval = 1

[export]
enabled = false
"""


# TicTacToe self-play shared by test_selfplay.py and test_learner.py (one compilation).
SELFPLAY_GAMES = 16
SELFPLAY_MOVES = 12  # more than a TicTacToe game lasts: every game ends, and restarts, at least once
SELFPLAY_OPENING_MOVES = 2
SELFPLAY_CONFIG = Config()
SELFPLAY_MCTS = SELFPLAY_CONFIG.mcts.model_copy(update=dict(simulations=8))


@functools.lru_cache(maxsize=None)
def tictactoe_selfplay():
    """(network, jitted selfplay.play, fresh random params) for the shared configuration."""
    game = games.make("tictactoe")
    network = nets.make_network(SELFPLAY_CONFIG.model, game)
    params = nets.init_params(network, game, jax.random.key(0))
    play = jax.jit(
        functools.partial(selfplay.play, game, network.apply, SELFPLAY_MCTS, SELFPLAY_OPENING_MOVES),
        static_argnames="moves",
    )
    return network, play, params
