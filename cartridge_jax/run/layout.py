"""Where a run's files live, and the configuration a run was trained with.

    <run_dir>/stats.json               telemetry (stats.py)
    <run_dir>/checkpoints/<N>/         orbax checkpoints (checkpoint.py)
    <run_dir>/snapshots/iter_<N>.msgpack   parameters alone (checkpoint.py)
    <run_dir>/models/<game>/           the exported network (model/export.py)

A run directory may be local or remote (e.g. gs://bucket/runs/c4); paths are `etils.epath`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from etils import epath

from cartridge_jax.config import Config, ConfigError, load_config
from cartridge_jax.run import stats


def run_dir(config: Config) -> epath.Path:
    """The run's folder: common.run_dir if set, else <data_dir>/runs/<game>; local or remote
    (e.g. gs://bucket/runs/c4)."""
    if config.common.run_dir:
        return epath.Path(config.common.run_dir)
    return epath.Path(config.common.data_dir) / "runs" / config.common.game


def stats_path(run_directory: str | os.PathLike) -> epath.Path:
    return epath.Path(run_directory) / "stats.json"


def checkpoints_dir(run_directory: str | os.PathLike) -> epath.Path:
    return epath.Path(run_directory) / "checkpoints"


def model_dir(run_directory: str | os.PathLike, game_name: str) -> epath.Path:
    """Where a run's exported model goes: <run_dir>/models/<game>/."""
    return epath.Path(run_directory) / "models" / game_name


def recorded_config(run_directory: str | os.PathLike, *, config_file: str | None = None,
                    flags: Mapping[str, Any] | None = None) -> Config:
    """The configuration a run was trained with (its stats.json's), under `flags`, with
    common.run_dir set to `run_directory`. Without stats.json: the usual layers.

    Raises ConfigError (one line) when stats.json is unreadable or holds an invalid config.
    """
    path = stats_path(run_directory)
    recorded = {}
    if path.exists():
        try:
            saved = stats.read_stats(path).config
        except stats.StatsError as error:
            raise ConfigError(str(error)) from None
        recorded = {f"{section}.{key}": value
                    for section, values in saved.items() for key, value in values.items()}
    layers = {**recorded, **(flags or {}), "common.run_dir": str(run_directory)}
    return load_config(config_file=config_file, flags=layers)[0]
