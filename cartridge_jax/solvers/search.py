"""What the exact solvers share: a bit count for 64-bit boards, and the error of a spent budget."""

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
