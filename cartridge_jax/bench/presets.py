"""The configurations the self-play and learner suites measure: each game's presets' networks.

Net "cpu" and "gpu" are the `<game>-cpu` and `<game>-gpu` presets as they are; net "tiny" is the
CPU preset with a tiny MLP, so small that the loop around it (search, rules, replay) is what
gets measured.
"""

from __future__ import annotations

from typing import Any

import jax

from cartridge_jax import config as config_lib

NETS = ("tiny", "cpu", "gpu")
TINY_MODEL = {"kind": "mlp", "mlp_hidden": (32,), "value_hidden": 32}


def default_nets() -> list[str]:
    """All nets on an accelerator; on a CPU not "gpu": a GPU preset's ResNet takes minutes per
    self-play chunk there."""
    return list(NETS) if jax.default_backend() != "cpu" else ["tiny", "cpu"]


def preset_name(game: str, net: str) -> str:
    return f"{game}-{'gpu' if net == 'gpu' else 'cpu'}"


def preset_config(game: str, net: str, *, simulations: int | None = None,
                  games: int | None = None, moves: int | None = None,
                  train_steps: int | None = None,
                  dtype: str | None = None) -> config_lib.Config:
    """The preset of `net` for `game`, with the benchmark's sizes where given.

    `games` keeps the preset's replay depth in rows (capacity / games), so the buffer's shape
    per game, and the work of writing it, stay the preset's. `moves` is the self-play chunk
    (up to trainer.MAX_SELFPLAY_CHUNK), `train_steps` the training chunk (up to MAX_TRAIN_CHUNK),
    `dtype` the network's compute dtype.
    """
    preset_sections = config_lib.PRESETS[preset_name(game, net)]
    sections: dict[str, dict[str, Any]] = {
        section: dict(values) for section, values in preset_sections.items()}
    if net == "tiny":
        sections["model"] = dict(TINY_MODEL)
    preset = config_lib.Config.model_validate(sections)
    selfplay, training, mcts = sections.setdefault("selfplay", {}), sections.setdefault(
        "training", {}), sections.setdefault("mcts", {})
    if simulations is not None:
        mcts["simulations"] = simulations
    if games is not None:
        rows = -(-preset.training.replay_capacity // preset.selfplay.games)
        selfplay["games"] = games
        training["replay_capacity"] = rows * games
    if dtype is not None:
        sections["model"] = {**sections.get("model", {}), "dtype": dtype}
    if moves is not None:
        selfplay["moves_per_iteration"] = moves
    if train_steps is not None:
        training["steps_per_iteration"] = train_steps
    return config_lib.Config.model_validate(sections)
