"""An exhaustive TicTacToe minimax solver, independent of the package's rules: the truth that
trained agents are checked against (tests, `evaluate.tictactoe_exhaustive`) and the `perfect`
arena opponent.

Boards are tuples of 9 ints (0 empty, 1 X, 2 O), cells row-major; X moves when counts are equal.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def winner(board: tuple[int, ...]) -> int:
    for a, b, c in LINES:
        if board[a] and board[a] == board[b] == board[c]:
            return board[a]
    return 0


def to_move(board: tuple[int, ...]) -> int:
    return 1 if board.count(1) == board.count(2) else 2


@functools.lru_cache(maxsize=None)
def value(board: tuple[int, ...]) -> int:
    """Minimax value for the side to move: +1 win, 0 draw, -1 loss."""
    if winner(board):
        return -1  # the previous mover just won
    if 0 not in board:
        return 0
    return max(-value(child) for child in children(board).values())


def children(board: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    mover = to_move(board)
    return {cell: board[:cell] + (mover,) + board[cell + 1:] for cell in range(9) if board[cell] == 0}


def optimal_moves(board: tuple[int, ...]) -> set[int]:
    best = value(board)
    return {cell for cell, child in children(board).items() if -value(child) == best}


def reachable_positions() -> list[tuple[int, ...]]:
    """All 5478 positions reachable from the empty board (play stops at a win)."""
    seen, frontier = {(0,) * 9}, [(0,) * 9]
    while frontier:
        board = frontier.pop()
        if winner(board) or 0 not in board:
            continue
        for child in children(board).values():
            if child not in seen:
                seen.add(child)
                frontier.append(child)
    return sorted(seen)


def live_positions() -> list[tuple[int, ...]]:
    """The 4520 reachable positions where the game is not over."""
    return [b for b in reachable_positions() if not winner(b) and 0 in b]


def states_of(game, boards: list[tuple[int, ...]]):
    """The package's batched TicTacToe states for live `boards` (built field by field)."""
    board = np.asarray(boards, np.int8)
    start = game.init(jax.random.key(0))
    batch = len(boards)
    return start.replace(
        board=jnp.asarray(board),
        current_player=jnp.asarray((board == 1).sum(1) != (board == 2).sum(1), jnp.int32),
        legal_action_mask=jnp.asarray(board == 0),
        terminated=jnp.zeros(batch, bool),
        rewards=jnp.zeros((batch, 2), jnp.float32),
    )


def optimal_move_table() -> np.ndarray:
    """bool[3**9, 9]: the optimal moves of each live board, indexed by its base-3 number."""
    table = np.zeros((3**9, 9), bool)
    for board in live_positions():
        table[board_index(board)] = [cell in optimal_moves(board) for cell in range(9)]
    return table


def board_index(board) -> int:
    return int(sum(v * 3**i for i, v in enumerate(board)))


def perfect_agent(table: np.ndarray):
    """A batched jittable agent playing uniformly among minimax-optimal moves."""
    table = jnp.asarray(table)
    powers = jnp.asarray(3 ** np.arange(9), jnp.int32)

    def agent(key, states):
        index = jnp.sum(states.board.astype(jnp.int32) * powers, axis=-1)  # [B]
        allowed = table[index] & states.legal_action_mask
        allowed = jnp.where(allowed.any(-1, keepdims=True), allowed, states.legal_action_mask)
        logits = jnp.where(allowed, 0.0, jnp.finfo(jnp.float32).min)
        return jax.random.categorical(key, logits).astype(jnp.int32)

    return agent
