"""Counting move paths and positions: the rules' fingerprint against published numbers.

The game tree is walked breadth first, one ply at a time. Equal positions are merged and carry
how many paths reach them (their multiplicity), so the work grows with the number of distinct
positions, not paths. Children are stepped on the device in fixed-size chunks of
(position, legal action) pairs, so each game compiles once; bookkeeping is numpy on the host.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from cartridge_jax.games import Game, State

CHUNK_SIZE = 8192  # (position, action) pairs stepped per device call


@dataclasses.dataclass(frozen=True)
class Level:
    """What the walk found after exactly `ply` moves from the start."""

    ply: int
    paths: int  # move paths of `ply` moves during which the game had not ended before the last
    distinct: int  # distinct positions those paths reach (finished games included)
    ended: dict[str, int]  # paths whose game ended exactly at this ply: "player0"/"player1"/"draw"


@dataclasses.dataclass(frozen=True)
class _Frontier:
    states: State  # numpy leaves, [N, ...]
    weights: np.ndarray  # int64[N]: paths reaching each state


@functools.lru_cache(maxsize=None)
def _chunk_stepper(game: Game):
    return jax.jit(jax.vmap(game.step))


def _to_host(tree: State) -> State:
    return jax.tree.map(np.asarray, tree)


def _start(game: Game, start: State | None) -> _Frontier:
    state = game.init(jax.random.key(0)) if start is None else start
    states = jax.tree.map(lambda leaf: np.asarray(leaf)[None], state)
    return _Frontier(states, np.ones(1, np.int64))


def _expand(game: Game, frontier: _Frontier) -> _Frontier:
    """Every legal move from every position: the children, with their parents' weights."""
    parent, action = np.nonzero(frontier.states.legal_action_mask)  # [P], [P]
    step = _chunk_stepper(game)
    chunks = []
    for begin in range(0, len(parent), CHUNK_SIZE):
        idx = parent[begin : begin + CHUNK_SIZE]
        act = action[begin : begin + CHUNK_SIZE]
        pad = CHUNK_SIZE - len(idx)  # pad to the fixed chunk shape: one compilation per game
        idx_padded = np.concatenate([idx, np.zeros(pad, idx.dtype)])
        act_padded = np.concatenate([act, np.zeros(pad, act.dtype)])
        parents = jax.tree.map(lambda leaf: leaf[idx_padded], frontier.states)
        children = _to_host(step(parents, jnp.asarray(act_padded, jnp.int32)))
        chunks.append(jax.tree.map(lambda leaf: leaf[: len(idx)], children))
    states = jax.tree.map(lambda *leaves: np.concatenate(leaves), *chunks)
    return _Frontier(states, frontier.weights[parent])


def _merge_equal(frontier: _Frontier) -> _Frontier:
    """Merges equal states (every field equal), adding up their weights."""
    leaves = jax.tree.leaves(frontier.states)
    count = len(frontier.weights)
    key_bytes = np.concatenate(
        [np.ascontiguousarray(leaf).reshape(count, -1).view(np.uint8) for leaf in leaves], axis=1
    )
    keys = np.ascontiguousarray(key_bytes).view(np.dtype((np.void, key_bytes.shape[1])))[:, 0]
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    weights = np.zeros(len(first), np.int64)
    np.add.at(weights, inverse, frontier.weights)
    states = jax.tree.map(lambda leaf: leaf[first], frontier.states)
    return _Frontier(states, weights)


def _ended_by_outcome(frontier: _Frontier) -> dict[str, int]:
    rewards = frontier.states.rewards  # [N, 2]
    ended = frontier.states.terminated
    weights = frontier.weights
    return {
        "player0": int(weights[ended & (rewards[:, 0] > 0)].sum()),
        "player1": int(weights[ended & (rewards[:, 1] > 0)].sum()),
        "draw": int(weights[ended & (rewards[:, 0] == 0)].sum()),
    }


def levels(game: Game, max_ply: int, *, start: State | None = None) -> Iterator[Level]:
    """Yields a `Level` for plies 0..max_ply from `start` (default: the initial position)."""
    frontier = _start(game, start)
    for ply in range(max_ply + 1):
        if ply > 0:
            frontier = _merge_equal(_expand(game, frontier))
        yield Level(
            ply=ply,
            paths=int(frontier.weights.sum()),
            distinct=len(frontier.weights),
            ended=_ended_by_outcome(frontier),
        )
        live = ~frontier.states.terminated  # finished games have no moves: drop them early
        frontier = _Frontier(
            jax.tree.map(lambda leaf: leaf[live], frontier.states), frontier.weights[live]
        )


def perft(game: Game, depth: int, *, start: State | None = None) -> int:
    """Move paths of exactly `depth` moves from `start`, counting a path only if the game had
    not ended before its last move (chess-style perft; an Othello pass is a move).

    The last ply is counted from the legal masks instead of being stepped.
    """
    if depth < 0:
        raise ValueError(f"perft depth must be >= 0, got {depth}")
    frontier = _start(game, start)
    for _ in range(depth - 1):
        frontier = _merge_equal(_expand(game, frontier))
    if depth == 0:
        return 1
    legal_moves = frontier.states.legal_action_mask.sum(axis=1)  # [N]
    return int((frontier.weights * legal_moves).sum())


def divide(game: Game, depth: int) -> dict[str, int]:
    """perft(depth - 1) below each legal first move, keyed by the move's name."""
    if depth < 1:
        raise ValueError(f"perft --divide needs depth >= 1, got {depth}")
    state = game.init(jax.random.key(0))
    step = jax.jit(game.step)
    counts = {}
    for action in np.flatnonzero(np.asarray(state.legal_action_mask)):
        child = step(state, int(action))
        counts[game.action_to_text(int(action))] = perft(game, depth - 1, start=child)
    return counts
