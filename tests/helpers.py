"""Helpers shared by test modules: batched random games, compiled once per game and seed; a tiny
training configuration; training in a subprocess."""

import functools
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from cartridge_jax import games
from cartridge_jax.config import Config
from cartridge_jax.config.layering import FAULT_ENV
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


# Training in a subprocess, for the tests that kill or interrupt it (test_loop.py,
# test_faults.py). Subprocesses share compilations through the repository's persistent cache.
REPO = pathlib.Path(__file__).resolve().parent.parent
CACHE_DIR = REPO / ".jax_cache"  # the persistent compilation cache conftest.py turns on


def training_env(fault: str | None = None) -> dict[str, str]:
    """A clean environment for a training subprocess: CPU, no CARTRIDGE_* settings, the
    repository's compilation cache, and the fault point `fault` (e.g. "train:3") if given."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CARTRIDGE_")}
    env.update(CARTRIDGE_JAX_CACHE_DIR=str(CACHE_DIR), JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    if fault is not None:
        env[FAULT_ENV] = fault
    return env


def start_training(toml, run_dir, cwd, *flags: str, fault: str | None = None) -> subprocess.Popen:
    """`python -m cartridge_jax train --config TOML --run-dir RUN_DIR --no-progress FLAGS...`
    from the folder `cwd`; stdout and stderr merged (all of train's output is on stderr)."""
    command = [sys.executable, "-m", "cartridge_jax", "train", "--config", str(toml),
               "--run-dir", str(run_dir), "--no-progress", *flags]
    return subprocess.Popen(command, cwd=cwd, env=training_env(fault), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def trees_equal(a, b) -> bool:
    """Same tree structure and every leaf equal bit for bit (typed PRNG keys by their data)."""
    def as_numpy(leaf):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        return np.asarray(leaf)

    leaves_a, tree_a = jax.tree.flatten(jax.tree.map(as_numpy, a))
    leaves_b, tree_b = jax.tree.flatten(jax.tree.map(as_numpy, b))
    return tree_a == tree_b and all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))
