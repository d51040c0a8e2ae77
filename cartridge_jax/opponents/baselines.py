"""Baseline agents for evaluation: pure, jittable policies over one state (vmap for batches).

An agent is `(key, state) -> int32[] action`. Both baselines pick uniformly among their
preferred legal moves, so they are reproducible from the key and never play an illegal move.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from cartridge_jax.games.base import Game, State, uniform_among

Agent = Callable[[jax.Array, State], jax.Array]


def random_action(key: jax.Array, state: State) -> jax.Array:
    """A uniformly random legal move."""
    return uniform_among(key, state.legal_action_mask)


def greedy_action(game: Game, key: jax.Array, state: State) -> jax.Array:
    """A random move among the legal ones the game's `greedy_scores` rates highest.

    TicTacToe and Connect 4: win at once if possible, else avoid moves that hand the opponent an
    immediate win (which blocks a threat), else random. Othello: flip the most discs.
    """
    legal = state.legal_action_mask
    scores = jnp.where(legal, game.greedy_scores(state), -jnp.inf)  # [A]
    return uniform_among(key, legal & (scores == jnp.max(scores)))


def make_agent(game: Game, name: str) -> Agent:
    """The baseline called `name` ("random" or "greedy") for `game`."""
    if name == "random":
        return random_action
    if name == "greedy":
        return lambda key, state: greedy_action(game, key, state)
    raise ValueError(f"unknown baseline agent {name!r}: use one of {', '.join(AGENT_NAMES)}")


AGENT_NAMES = ("random", "greedy")
