"""Suite "scaling": self-play positions/s and training steps/s on 1, 2, 4, ... devices.

Each row runs the Trainer's two sharded phases over the first `devices` devices of this process
(`Trainer(config, mesh)`), at the same global batch sizes, so the speedup column reads
directly as scaling efficiency x devices. On a CPU, simulate devices with
`XLA_FLAGS=--xla_force_host_platform_device_count=4`: the simulated devices share the real
cores, so there the suite checks that sharding runs, not that it pays.
"""

from __future__ import annotations

from typing import Any

import jax

from cartridge_jax import parallel
from cartridge_jax.bench import learner, presets, timing
from cartridge_jax.training.trainer import Trainer


def device_counts(config) -> list[int]:
    """1, 2, 4, ... up to this process's devices, where the global batches split evenly."""
    counts, count = [], 1
    while count <= jax.local_device_count():
        if config.selfplay.games % count == 0 and config.training.batch_size % count == 0:
            counts.append(count)
        count *= 2
    return counts


def measure(game_names: list[str], net_names: list[str], repeats: int, *,
            games: int | None = None, moves: int | None = None,
            train_steps: int | None = None) -> list[dict[str, Any]]:
    rows = []
    for name in game_names:
        for net in net_names:
            config = presets.preset_config(name, net, games=games, moves=moves,
                                           train_steps=train_steps)
            baseline = None
            for count in device_counts(config):
                mesh = parallel.data_mesh(jax.local_devices()[:count])
                row = _measure_one(Trainer(config, mesh), repeats)
                baseline = baseline or row
                row.update(game=name, net=net, preset=presets.preset_name(name, net),
                           devices=count, platform=jax.local_devices()[0].platform,
                           selfplay_speedup=row["positions_per_s"] / baseline["positions_per_s"],
                           train_speedup=row["steps_per_s"] / baseline["steps_per_s"])
                rows.append(row)
                print(f"{name:>10} {net:>4} net, {count} device(s): "
                      f"{row['positions_per_s']:,.0f} positions/s (x{row['selfplay_speedup']:.2f})"
                      f", {row['steps_per_s']:,.1f} steps/s (x{row['train_speedup']:.2f})",
                      flush=True)
    return rows


def _measure_one(trainer: Trainer, repeats: int) -> dict[str, Any]:
    state = trainer.initial_state()
    params, games, buffer = state.train_state.params, state.games, state.buffer
    train_state = trainer.initial_state().train_state  # its own: training donates it
    full = jax.jit(learner.sampleable_buffer, out_shardings=trainer.shardings.buffer)(buffer)

    def selfplay(call):
        nonlocal games, buffer  # donated to each call, so the outputs carry on
        games, buffer, _ = trainer.selfplay(params, games, buffer, jax.random.key(call))
        return buffer

    def train(call):
        nonlocal train_state  # donated to each call
        train_state, losses = trainer.train(train_state, full, jax.random.key(call), 0.0)
        return losses

    measured = timing.time_interleaved({"selfplay": selfplay, "train": train}, repeats)
    config = trainer.config
    return {
        "games": config.selfplay.games, "batch_size": config.training.batch_size,
        "positions_per_s": trainer.selfplay_chunk * config.selfplay.games
        / measured["selfplay"].seconds,
        "steps_per_s": trainer.train_chunk / measured["train"].seconds,
    }


TABLE = (("game", "game", "{}"), ("net", "net", "{}"), ("devices", "devices", "{}"),
         ("platform", "platform", "{}"), ("positions/s", "positions_per_s", "{:,.0f}"),
         ("self-play speedup", "selfplay_speedup", "{:.2f}"),
         ("steps/s", "steps_per_s", "{:,.1f}"), ("train speedup", "train_speedup", "{:.2f}"))
