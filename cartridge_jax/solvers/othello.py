"""Exact Othello endgame scores, for labelling validation positions: never used by an agent.

    move_scores(text)   # {action: exact final disc difference for the side to move}

Positions are the game's text format (64 characters a1..h1, ..., a8..h8 of 'X', 'O', '-', then
the side to move); actions are squares 0-63 as in `cartridge_jax.games.othello`. Scores follow
Edax and the FForum files: the final disc difference from the side to move's view, the empty
squares of a finished game counted for the winner.

Negamax with alpha-beta over 64-bit bitboards (bit i = square i), compiled by numba, with the
opponent's mobility as the move order (fewest replies first) above a few empties. Fit for
endgames of up to about 16 empty squares; a node budget bounds the work (`BudgetExceeded`).
"""

from __future__ import annotations

import numba
import numpy as np

from cartridge_jax.solvers.search import BudgetExceeded, insert_by_weight, popcount

SQUARES = 64
_U = np.uint64
_ALL = _U(0xFFFFFFFFFFFFFFFF)
_INNER = _U(0x7E7E7E7E7E7E7E7E)  # columns b-g: a run that moves sideways never wraps a row
_STEPS = np.array([1, -1, 8, -8, 9, -9, 7, -7], dtype=np.int64)
_MASKS = np.array([_INNER, _INNER, _ALL, _ALL, _INNER, _INNER, _INNER, _INNER], dtype=np.uint64)
_SORTED_BELOW = 5  # with fewer empties, moves are tried in square order (sorting costs more)


@numba.njit(cache=True, inline="always")
def _shift(bits, step):
    return bits << _U(step) if step > 0 else bits >> _U(-step)


@numba.njit(cache=True)
def _moves(own, opponent):
    """Squares where the side owning `own` may play."""
    empty = ~(own | opponent)
    moves = _U(0)
    for direction in range(8):
        step, mask = _STEPS[direction], _MASKS[direction]
        inside = opponent & mask
        run = _shift(own, step) & inside
        for _ in range(5):  # a run of opponent discs is at most 6 long
            run |= _shift(run, step) & inside
        moves |= _shift(run, step) & empty
    return moves


@numba.njit(cache=True)
def _flips(own, opponent, move):
    flipped = _U(0)
    for direction in range(8):
        step, mask = _STEPS[direction], _MASKS[direction]
        run = _U(0)
        square = _shift(move, step)
        while square & opponent & mask:
            run |= square
            square = _shift(square, step)
        if square & own:
            flipped |= run
    return flipped


@numba.njit(cache=True)
def _final(own, opponent):
    """The finished game's score for `own`: disc difference, empties to the winner."""
    difference = popcount(own) - popcount(opponent)
    empties = SQUARES - popcount(own | opponent)
    if difference > 0:
        return difference + empties
    if difference < 0:
        return difference - empties
    return 0


@numba.njit(cache=True)
def _negamax(own, opponent, alpha, beta, counter):
    counter[0] += 1
    if counter[0] > counter[1]:
        return 0  # the caller sees the budget spent and discards the result
    moves = _moves(own, opponent)
    if moves == 0:
        if _moves(opponent, own) == 0:
            return _final(own, opponent)
        return -_negamax(opponent, own, -beta, -alpha, counter)  # pass
    empties = SQUARES - popcount(own | opponent)
    # The moves, fewest opponent replies first (then square order).
    order = np.empty(32, dtype=np.uint64)
    weight = np.empty(32, dtype=np.int64)
    count = 0
    remaining = moves
    while remaining:
        move = remaining & (~remaining + _U(1))  # lowest set bit
        remaining ^= move
        replies = 0
        if empties >= _SORTED_BELOW:
            flipped = _flips(own, opponent, move)
            replies = popcount(_moves(opponent & ~flipped, own | flipped | move))
        count = insert_by_weight(order, weight, count, move, replies)
    best = -SQUARES - 1
    for index in range(count):
        move = order[index]
        flipped = _flips(own, opponent, move)
        score = -_negamax(opponent & ~flipped, own | flipped | move, -beta, -alpha, counter)
        if score > best:
            best = score
            if score > alpha:
                alpha = score
                if alpha >= beta:
                    break
    return best


@numba.njit(cache=True)
def _move_score(own, opponent, square, counter):
    """The exact score of playing `square` (a legal move)."""
    move = _U(1) << _U(square)
    flipped = _flips(own, opponent, move)
    return -_negamax(opponent & ~flipped, own | flipped | move, -SQUARES - 1, SQUARES + 1,
                     counter)


def legal_squares(own: int, opponent: int) -> list[int]:
    """The squares where the side with discs `own` may play (bitboards as ints)."""
    moves = int(_moves(_U(own), _U(opponent)))
    return [square for square in range(SQUARES) if moves >> square & 1]


def played(own: int, opponent: int, square: int) -> tuple[int, int]:
    """(own, opponent) after the side with `own` plays the legal move `square`."""
    move = _U(1 << square)
    flipped = int(_flips(_U(own), _U(opponent), move))
    return own | flipped | int(move), opponent & ~flipped


def position_text(black: int, white: int, black_to_move: bool) -> str:
    """The game's text format of a position (what `move_scores` and the .obf files read)."""
    squares = "".join("X" if black >> i & 1 else "O" if white >> i & 1 else "-"
                      for i in range(SQUARES))
    return f"{squares} {'X' if black_to_move else 'O'}"


def _boards(text: str) -> tuple[np.uint64, np.uint64]:
    """(side to move's discs, opponent's discs) of a position in the game's text format."""
    fields = text.split(";")[0].split()
    if len(fields) != 2 or len(fields[0]) != SQUARES or fields[1] not in ("X", "O"):
        raise ValueError(f"{text[:80]!r} is not an Othello position: 64 squares of X, O or -, "
                         "a space, then X or O to move")
    black = sum(1 << i for i, c in enumerate(fields[0]) if c == "X")
    white = sum(1 << i for i, c in enumerate(fields[0]) if c == "O")
    if fields[1] == "X":
        return _U(black), _U(white)
    return _U(white), _U(black)


def move_scores(text: str, node_budget: int = 200_000_000) -> dict[int, int]:
    """{square: exact final disc difference for the side to move if it plays there}, every
    legal move; {} when the side to move must pass or the game is over. BudgetExceeded when
    the moves together need more than `node_budget` nodes."""
    own, opponent = _boards(text)
    counter = np.array([0, node_budget], dtype=np.int64)
    scores = {}
    for square in legal_squares(int(own), int(opponent)):
        score = _move_score(own, opponent, square, counter)
        if counter[0] > counter[1]:
            raise BudgetExceeded(f"more than {node_budget:,} nodes")
        scores[square] = int(score)
    return scores
