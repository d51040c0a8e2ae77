"""What the numbers were measured on: device, software versions, load, memory."""

from __future__ import annotations

import os
import platform
import resource
from typing import Any

import jax

from cartridge_jax import parallel

PACKAGES = ("jax", "jaxlib", "flax", "optax", "mctx", "pgx")


def device_info() -> dict[str, Any]:
    device = jax.devices()[0]
    info = {
        "platform": device.platform,  # the backend: cpu, gpu or tpu
        "device_kind": device.device_kind,  # the GPU's or TPU's name ("cpu" on a CPU)
        "device_count": jax.device_count(),
        "cpu": parallel.cpu_model(),
        "cpu_cores": os.cpu_count(),
        # Other processes' load while the benchmark ran: on a shared machine the numbers are
        # only comparable within one run.
        "load_average_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "jax_version": jax.__version__,
    }
    for package in PACKAGES:
        version = parallel.package_version(package)
        if version is not None:
            info[f"{package}_version"] = version
    return info


def peak_host_memory_mb() -> float:
    """The process's peak resident memory so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_device_memory_mb() -> float | None:
    """The first device's peak memory in use, in MiB, where the backend reports it (GPU/TPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**20
