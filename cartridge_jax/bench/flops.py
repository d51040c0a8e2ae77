"""How close self-play comes to the device's arithmetic limit.

A self-play position costs `simulations + 1` network evaluations (mctx calls the root function
once and the recurrent function once per simulation), so at the FLOP bound it would run at
peak / (FLOPs per evaluation x (simulations + 1)) positions per second. Everything else (search
bookkeeping, rules, replay) is overhead on top of that bound.

The FLOPs per evaluation come from XLA's cost analysis of the network's HLO before the backend
compiles it: afterwards a GPU's convolutions are cuDNN calls that the analysis counts as zero (seen
on an H100: 0.8 MFLOP instead of 160 for the Connect 4 ResNet). The count leaves out the
multiplications by a convolution's zero padding, which the hardware may do anyway. The peak is
measured on the device itself (a large matrix product at the network's dtype and JAX's default
precision), not taken from a datasheet.
"""

from __future__ import annotations

import functools
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

from cartridge_jax.model import nets

_COST_BATCH = 64  # positions per costed call: large enough that per-call constants vanish


def evaluation_flops(network: nn.Module, params: nets.Params,
                     observation_shape: tuple[int, ...]) -> float:
    """FLOPs of one network evaluation of one position, as XLA counts them.

    Counted on the CPU backend, which every JAX install has: the count is the HLO's, the same
    on every backend, and on a GPU JAX 0.11 returns no analysis of an unoptimised module.
    """
    cpu = jax.devices("cpu")[0]
    observations = jax.device_put(jnp.zeros((_COST_BATCH, *observation_shape)), cpu)
    lowered = jax.jit(network.apply).lower(jax.device_put(params, cpu), observations)
    return float(lowered.cost_analysis()["flops"]) / _COST_BATCH


@functools.cache
def matmul_peak(dtype_name: str) -> float:
    """FLOP/s of a large square matrix product in `dtype_name` on the default device: the
    arithmetic ceiling a network in that dtype can reach here (best of a few runs)."""
    size = 2048 if jax.default_backend() == "cpu" else 8192  # seconds, not minutes, on a CPU
    keys = jax.random.split(jax.random.key(0))
    a, b = (jax.random.normal(key, (size, size), jnp.dtype(dtype_name)) for key in keys)
    product = jax.jit(jnp.matmul)
    jax.block_until_ready(product(a, b))  # compile
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(product(a, b))
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def selfplay_fields(network: nn.Module, params: nets.Params, observation_shape: tuple[int, ...],
                    simulations: int, positions_per_s: float) -> dict[str, float]:
    """A self-play row's FLOP fields: network GFLOP per position, the achieved TFLOP/s, the
    device's measured peak at the network's dtype, and the fraction of it reached."""
    per_position = evaluation_flops(network, params, observation_shape) * (simulations + 1)
    peak = matmul_peak(jnp.dtype(network.dtype).name)
    achieved = per_position * positions_per_s
    return {"gflop_per_position": per_position / 1e9, "achieved_tflops": achieved / 1e12,
            "peak_tflops": peak / 1e12, "flop_fraction": achieved / peak}
