"""A run directory: where its files live, its stats.json telemetry and its orbax checkpoints.

    layout.run_dir(config)                       # <data_dir>/runs/<game>, or common.run_dir
    stats.read_stats(layout.stats_path(run))     # the telemetry, validated
    Checkpoints(layout.checkpoints_dir(run), max_to_keep=3).restore_params(expected_meta=...)
"""

from cartridge_jax.run import checkpoint, layout, stats
from cartridge_jax.run.checkpoint import CheckpointError, Checkpoints, CorruptCheckpointError
from cartridge_jax.run.layout import model_dir, recorded_config, run_dir
from cartridge_jax.run.stats import Stats, StatsError

__all__ = ["CheckpointError", "Checkpoints", "CorruptCheckpointError", "Stats", "StatsError",
           "checkpoint", "layout", "model_dir", "recorded_config", "run_dir", "stats"]
