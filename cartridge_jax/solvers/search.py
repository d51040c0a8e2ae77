"""What the exact solvers share: a bit count, the move ordering, the error of a spent budget."""

from __future__ import annotations

import numba
import numpy as np


class BudgetExceeded(RuntimeError):
    """The position needs more search nodes than the solver's budget."""


@numba.njit(cache=True)
def popcount(bits):
    """Set bits of a uint64."""
    count = 0
    while bits:
        bits &= bits - np.uint64(1)
        count += 1
    return count


@numba.njit(cache=True)
def insert_by_weight(moves, weights, count, move, weight):
    """Inserts `move` into moves[:count], kept in ascending order of weight (after any of equal
    weight: the caller's order breaks ties); returns the new count. An insertion sort: the
    lists are at most a few dozen moves long."""
    position = count
    while position > 0 and weights[position - 1] > weight:
        moves[position] = moves[position - 1]
        weights[position] = weights[position - 1]
        position -= 1
    moves[position] = move
    weights[position] = weight
    return count + 1
