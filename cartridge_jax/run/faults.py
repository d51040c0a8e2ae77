"""Fault points: named places in an iteration where the fault-injection tests kill the process.

    CARTRIDGE_FAULT=checkpoint_save:3 train ...  # SIGKILL right after iteration 3's save starts
    CARTRIDGE_FAULT=checkpoint_save:3:SIGINT,SIGINT train ...  # there, Ctrl-C twice instead

`point(name, iteration)` does nothing unless `$CARTRIDGE_FAULT` names that point and iteration;
then it writes `fault point <name>:<iteration> reached` to standard error (so a test can tell that
its point was reached, not that the process died elsewhere) and sends the process the signals
named after the iteration, in order (default: SIGKILL, as a power cut or the kernel's OOM killer
would: no handler, no cleanup).
"""

from __future__ import annotations

import os
import signal
import sys

from cartridge_jax.config.layering import FAULT_ENV

# Where an iteration can die (tests/test_faults.py kills at each of them).
POINTS = ("selfplay", "train", "checkpoint_save", "export", "stats_write")


def point(name: str, iteration: int) -> None:
    """Signals the process here if `$CARTRIDGE_FAULT` is `<name>:<iteration>[:<signals>]`."""
    assert name in POINTS, name
    fault = os.environ.get(FAULT_ENV, "").split(":")
    if fault[:2] != [name, str(iteration)]:
        return
    print(f"fault point {name}:{iteration} reached", file=sys.stderr, flush=True)
    for signal_name in (fault[2].split(",") if len(fault) > 2 else ["SIGKILL"]):
        # In the main thread, raise_signal runs the Python handler before it returns.
        signal.raise_signal(signal.Signals[signal_name])
