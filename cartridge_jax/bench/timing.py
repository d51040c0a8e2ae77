"""Timing jitted work on a shared machine: candidates take turns, the best run counts.

Each candidate is a `run(i)` that does one unit of work and returns the arrays to wait for.
Call 0 compiles; calls 1..repeats are timed. The candidates of one comparison (ours and pgx's)
alternate, so a burst of load from other processes hits both alike, and the fastest of several
runs is the least disturbed one. Process CPU time (all threads) is kept beside wall time: on a
busy machine it is the steadier measure of work done, and the two agree when the machine is idle
and the program runs on one core.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Mapping

import jax

Run = Callable[[int], Any]  # (call number) -> arrays to wait for


@dataclasses.dataclass(frozen=True)
class Timing:
    seconds: float  # wall-clock seconds of the fastest timed run
    cpu_seconds: float  # process CPU seconds (all threads) of the cheapest timed run
    first_call_s: float  # wall-clock seconds of call 0: compilation plus one run

    @property
    def compile_s(self) -> float:
        """Seconds spent compiling: the first call less a steady one."""
        return max(self.first_call_s - self.seconds, 0.0)


def _timed(run: Run, call: int) -> tuple[float, float]:
    """(wall, CPU) seconds of `run(call)`, up to its results being ready."""
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(run(call))
    return time.perf_counter() - wall, time.process_time() - cpu


def time_interleaved(runs: Mapping[str, Run], repeats: int) -> dict[str, Timing]:
    """Timing of each named run: compiled first, then `repeats` timed calls taking turns."""
    first = {name: _timed(run, 0)[0] for name, run in runs.items()}
    walls = {name: [] for name in runs}
    cpus = {name: [] for name in runs}
    for call in range(1, repeats + 1):
        for name, run in runs.items():
            wall, cpu = _timed(run, call)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {name: Timing(min(walls[name]), min(cpus[name]), first[name]) for name in runs}


def ratio(ours: Timing, theirs: Timing) -> dict[str, float]:
    """Our speed over theirs for the same work, by wall-clock and by CPU time."""
    return {"ours_over_pgx": theirs.seconds / ours.seconds,
            "ours_over_pgx_cpu": theirs.cpu_seconds / ours.cpu_seconds}


def speeds(timings: Mapping[str, Timing], unit: str, work: int) -> dict[str, float]:
    """A result row's fields for timed candidates that each did `work` units: `<who>_<unit>`
    (units per second) and `<who>_compile_s` for each, then, given "ours" and "pgx", `ratio`."""
    row = {}
    for who, measured in timings.items():
        row[f"{who}_{unit}"] = work / measured.seconds
        row[f"{who}_compile_s"] = measured.compile_s
    if "pgx" in timings:
        row.update(ratio(timings["ours"], timings["pgx"]))
    return row
