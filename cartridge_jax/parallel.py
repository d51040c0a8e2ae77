"""Devices and processes: the data-parallel mesh a run trains on, and joining other hosts.

One program runs over a `jax.sharding.Mesh` with one axis, `data`, over every device of every
process. Self-play games and the replay buffer's game columns are split along it; parameters,
optimizer state and RNG keys are replicated. Training batches are drawn with global indices
(the same positions whatever the device count) and split along `data`, so the compiler
averages gradients with an all-reduce. With one device all of this is a no-op.

Several hosts (a GPU cluster, a TPU pod) join through `jax.distributed.initialize` before JAX
starts its backend (`join`). Every process then runs the same command; `is_main_process` says
which one writes files and prints progress. See docs/scaling.md. `cpu_model`,
`package_version` and `hardware` say what the machine is (model cards and benchmarks record it).
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import pathlib
import platform
import socket
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cartridge_jax.config import Config, ConfigError, DistributedConfig

DATA_AXIS = "data"


def join(config: DistributedConfig) -> None:
    """Joins a multi-process run (`distributed.initialize`); does nothing otherwise.

    Must run before anything starts JAX's backend. Settings left unset (empty address, 0
    processes, process id -1) are detected by JAX where it can (SLURM, TPU pods, Open MPI).
    """
    if not config.initialize:
        return
    if config.coordinator_address and config.process_id > 0:
        # JAX aborts the whole process (no Python exception) when the coordinator never
        # answers: find out first, and say so in one line.
        _wait_for_coordinator(config.coordinator_address, config.timeout_s)
    try:
        jax.distributed.initialize(
            coordinator_address=config.coordinator_address or None,
            num_processes=config.num_processes or None,
            process_id=None if config.process_id < 0 else config.process_id,
            initialization_timeout=config.timeout_s,
        )
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"distributed.initialize: could not join the other processes ({first}); check "
            "distributed.coordinator_address, num_processes and process_id (docs/scaling.md)"
        ) from None


def _wait_for_coordinator(address: str, timeout_s: float) -> None:
    """Returns once something listens at `address` (host:port); ConfigError after `timeout_s`."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"distributed.coordinator_address = {address!r} is not host:port, "
                          'e.g. "10.0.0.1:1234"')
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"distributed.coordinator_address = {address}: no coordinator answered in "
                    f"{timeout_s} s; start process 0 there or fix the address (docs/scaling.md)"
                ) from None
            time.sleep(0.5)


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh over `devices` (default: all devices of all processes, in JAX's order)."""
    return Mesh(np.asarray(jax.devices() if devices is None else devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_divisible(config: Config, devices: int) -> None:
    """ConfigError unless every global batch splits evenly over `devices`."""
    for name, value in (("selfplay.games", config.selfplay.games),
                        ("training.batch_size", config.training.batch_size)):
        if value % devices:
            multiple = devices * math.ceil(value / devices)
            raise ConfigError(
                f"{name} = {value} does not split evenly over {devices} devices: use a multiple "
                f"of {devices}, e.g. --{name} {multiple}")


def is_main_process() -> bool:
    """Whether this process writes files and prints progress (process 0)."""
    return jax.process_index() == 0


def any_process(flag: bool) -> bool:
    """Whether `flag` is true on any process: a collective, so every process must call it."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))


# --- what the machine is --------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(package: str) -> str | None:
    """The installed distribution's version, None if it is not installed."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def hardware() -> dict[str, Any]:
    """What the model was trained and measured on: CPU model and count, JAX backend, devices."""
    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "backend": jax.default_backend(),
            "devices": [device.device_kind for device in jax.devices()], "jax": jax.__version__}
