"""Exact Connect 4 (7x6) scores, for labelling validation positions: never used by an agent.

    solver = Solver()
    solver.move_scores("4453")   # {column (0-based): exact score, ...} for the side to move
    solver.score("4453")         # the position's exact score

Scores follow Pascal Pons' convention (and the refdata sets'): positive when the side to move
wins, 22 minus the stones the winner has played when it wins; 0 a draw; negative a loss.

Negamax with alpha-beta over bitboards, compiled by numba: a position is two 64-bit words (the
side to move's stones and all stones), bit `column * 7 + row`, one spare bit on top of each
column so that a carry from adding the bottom row finds a column's free cell. The search plays
only moves that do not hand the opponent an immediate win, tries first the moves that create the
most threats (then the centre), keeps upper bounds in a transposition table, and finds the exact
score by null-window searches that halve the window. A node budget bounds the work per position:
over it, `BudgetExceeded` (validation sets keep the positions that solve within the budget).
"""

from __future__ import annotations

import numba
import numpy as np

from cartridge_jax.solvers.search import BudgetExceeded, insert_by_weight, popcount

WIDTH, HEIGHT = 7, 6
CELLS = WIDTH * HEIGHT
_U = np.uint64
_STRIDE = HEIGHT + 1  # bits per column
_BOTTOM = _U(sum(1 << (column * _STRIDE) for column in range(WIDTH)))
_BOARD = _U(int(_BOTTOM) * ((1 << HEIGHT) - 1))
_COLUMNS = np.array([((1 << HEIGHT) - 1) << (column * _STRIDE) for column in range(WIDTH)],
                    dtype=np.uint64)  # [7]
_ORDER = np.array([3, 2, 4, 1, 5, 0, 6], dtype=np.int64)  # centre first
# Upper bounds are stored as score - MIN_SCORE + 1 > 0, so 0 means empty.
MIN_SCORE = -(CELLS // 2) + 3
TABLE_SIZE = (1 << 23) + 9  # odd: keys spread over every slot


@numba.njit(cache=True, inline="always")
def _trunc_div(a, b):  # C's integer division (toward zero), as the score bounds are written
    return a // b if a >= 0 else -((-a) // b)


@numba.njit(cache=True)
def _winning_cells(stones, mask):
    """Empty cells that would complete four for the player owning `stones`."""
    result = (stones << _U(1)) & (stones << _U(2)) & (stones << _U(3))  # vertical
    for step in (_U(_STRIDE), _U(_STRIDE - 1), _U(_STRIDE + 1)):  # horizontal, two diagonals
        pair = (stones << step) & (stones << (_U(2) * step))
        result |= pair & (stones << (_U(3) * step))
        result |= pair & (stones >> step)
        pair = (stones >> step) & (stones >> (_U(2) * step))
        result |= pair & (stones << step)
        result |= pair & (stones >> (_U(3) * step))
    return result & (_BOARD ^ mask)


@numba.njit(cache=True)
def _playable(mask):
    return (mask + _BOTTOM) & _BOARD


@numba.njit(cache=True)
def _non_losing_moves(current, mask):
    """Playable cells that do not let the opponent win at once (0: every move loses)."""
    playable = _playable(mask)
    threats = _winning_cells(current ^ mask, mask)
    forced = playable & threats
    if forced:
        if forced & (forced - _U(1)):  # two threats to block: lost
            return _U(0)
        playable = forced
    return playable & ~(threats >> _U(1))  # never fill the cell below an opponent's threat


@numba.njit(cache=True)
def _negamax(current, mask, moves, alpha, beta, keys, bounds, counter):
    """The score within [alpha, beta] (fail-soft bounds outside it), for a side to move that
    cannot win with its next move. counter[0] counts nodes, counter[1] is the budget."""
    counter[0] += 1
    if counter[0] > counter[1]:
        return 0  # the caller sees the budget spent and discards the result
    candidates = _non_losing_moves(current, mask)
    if candidates == 0:
        return -_trunc_div(CELLS - moves, 2)
    if moves >= CELLS - 2:
        return 0
    lowest = -_trunc_div(CELLS - 2 - moves, 2)
    if alpha < lowest:
        alpha = lowest
        if alpha >= beta:
            return alpha
    highest = _trunc_div(CELLS - 1 - moves, 2)
    key = current + mask + _BOTTOM  # names the position; never 0, the empty slot's key
    slot = key % _U(TABLE_SIZE)
    if keys[slot] == key:
        highest = bounds[slot] + MIN_SCORE - 1
    if beta > highest:
        beta = highest
        if alpha >= beta:
            return beta

    # Moves by the threats they create, most first (then centre first).
    order = np.empty(WIDTH, dtype=np.uint64)
    weight = np.empty(WIDTH, dtype=np.int64)
    count = 0
    for column in _ORDER:
        move = candidates & _COLUMNS[column]
        if move:
            threats = popcount(_winning_cells(current | move, mask))
            count = insert_by_weight(order, weight, count, move, -threats)
    for index in range(count):
        move = order[index]
        # After the move the opponent is to move: its stones are current ^ mask.
        score = -_negamax(current ^ mask, mask | move, moves + 1, -beta, -alpha, keys, bounds,
                          counter)
        if score >= beta:
            return score
        if score > alpha:
            alpha = score
    keys[slot] = key
    bounds[slot] = alpha - MIN_SCORE + 1
    return alpha


@numba.njit(cache=True)
def _solve(current, mask, moves, keys, bounds, counter):
    """Exact score of a live position (the side to move may have an immediate win)."""
    if _winning_cells(current, mask) & _playable(mask):
        return _trunc_div(CELLS + 1 - moves, 2)
    low = -_trunc_div(CELLS - moves, 2)
    high = _trunc_div(CELLS + 1 - moves, 2)
    while low < high:
        middle = low + (high - low) // 2
        # Probe near 0 first: most positions are near a draw, and narrow windows prune more.
        if middle <= 0 and _trunc_div(low, 2) < middle:
            middle = _trunc_div(low, 2)
        elif middle >= 0 and _trunc_div(high, 2) > middle:
            middle = _trunc_div(high, 2)
        result = _negamax(current, mask, moves, middle, middle + 1, keys, bounds, counter)
        if counter[0] > counter[1]:
            return 0
        if result <= middle:
            high = result
        else:
            low = result
    return low


def position(moves: str) -> tuple[np.uint64, np.uint64, int]:
    """(side to move's stones, all stones, stones played) of a live position after 1-based
    column digits; a ValueError for a bad digit, a full column or a move that makes four."""
    current, mask = 0, 0
    for ply, digit in enumerate(moves):
        if digit not in "1234567":
            raise ValueError(f"move {ply + 1} of {moves!r} is {digit!r}: columns are 1-7")
        column = int(digit) - 1
        cell = (mask + (1 << (column * _STRIDE))) & int(_COLUMNS[column])
        if not cell:
            raise ValueError(f"move {ply + 1} of {moves!r} plays in full column {digit}")
        if int(_winning_cells(_U(current), _U(mask))) & cell:
            raise ValueError(f"move {ply + 1} of {moves!r} makes four: the game is over")
        current ^= mask
        mask |= cell
    return _U(current), _U(mask), len(moves)


class Solver:
    """Exact scores with a transposition table kept across positions (its entries hold for any
    position); `node_budget` nodes per solve at most."""

    def __init__(self, node_budget: int = 50_000_000):
        self.keys = np.zeros(TABLE_SIZE, dtype=np.uint64)
        self.bounds = np.zeros(TABLE_SIZE, dtype=np.int8)
        self.node_budget = node_budget
        self.nodes = 0  # nodes searched, all solves together

    def _run(self, current, mask, moves) -> int:
        counter = np.array([0, self.node_budget], dtype=np.int64)
        score = _solve(current, mask, moves, self.keys, self.bounds, counter)
        self.nodes += int(min(counter[0], counter[1]))
        if counter[0] > counter[1]:
            raise BudgetExceeded(f"more than {self.node_budget:,} nodes")
        return int(score)

    def score(self, moves: str) -> int:
        current, mask, played = position(moves)
        if played == CELLS:
            return 0
        return self._run(current, mask, played)

    def move_scores(self, moves: str) -> dict[int, int]:
        """{0-based column: exact score for the side to move if it plays there}, every legal
        column; BudgetExceeded when one of them needs more than the budget."""
        current, mask, played = position(moves)
        wins = _winning_cells(current, mask)
        playable = _playable(mask)
        scores = {}
        for column in range(WIDTH):
            cell = playable & _COLUMNS[column]
            if not cell:
                continue
            if cell & wins:
                scores[column] = (CELLS + 1 - played) // 2
            elif played + 1 == CELLS:
                scores[column] = 0
            else:
                scores[column] = -self._run(current ^ mask, mask | cell, played + 1)
        return scores
