"""Suite "learner": gradient steps/s and samples/s of the Trainer's training phase.

Each preset network trains at its preset's batch size on a replay buffer of the preset's
capacity, every slot sampleable (the content does not change the work).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from cartridge_jax.bench import presets, timing
from cartridge_jax.model import nets
from cartridge_jax.training import replay
from cartridge_jax.training.trainer import Trainer


def sampleable_buffer(buffer: replay.ReplayBuffer) -> replay.ReplayBuffer:
    """`buffer` with every slot complete: all moves legal, a uniform policy target."""
    actions = buffer.legal_action_mask.shape[-1]
    return buffer.replace(
        policy_target=jnp.full_like(buffer.policy_target, 1 / actions),
        legal_action_mask=jnp.ones_like(buffer.legal_action_mask),
        complete=jnp.ones_like(buffer.complete),
    )


def measure(game_names: list[str], net_names: list[str], steps: int | None,
            repeats: int, dtype: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for name in game_names:
        for net in net_names:
            config = presets.preset_config(name, net, train_steps=steps, dtype=dtype)
            trainer = Trainer(config)
            state = trainer.initial_state()
            buffer, train_state = sampleable_buffer(state.buffer), state.train_state
            description = nets.describe(trainer.network, train_state.params)

            def run(call):
                nonlocal train_state  # donated to each call
                train_state, losses = trainer.train(train_state, buffer, jax.random.key(call), 0.0)
                return losses

            measured = timing.time_interleaved({"ours": run}, repeats)["ours"]
            batch_size, chunk = config.training.batch_size, trainer.train_chunk
            row = {
                "game": name, "net": net, "preset": presets.preset_name(name, net),
                "network": description, "batch_size": batch_size, "steps": chunk,
                "replay_capacity": buffer.capacity,
                "steps_per_s": chunk / measured.seconds,
                "samples_per_s": chunk * batch_size / measured.seconds,
                "compile_s": measured.compile_s,
            }
            rows.append(row)
            print(f"{name:>10} {net:>4} net ({description}), batch {batch_size}: "
                  f"{row['steps_per_s']:,.1f} steps/s, {row['samples_per_s']:,.0f} samples/s",
                  flush=True)
    return rows


TABLE = (("game", "game", "{}"), ("network", "network", "{}"), ("batch", "batch_size", "{}"),
         ("steps/s", "steps_per_s", "{:,.1f}"), ("samples/s", "samples_per_s", "{:,.0f}"),
         ("compile s", "compile_s", "{:.1f}"))
