"""The typed configuration: schema, presets, layering and opponent names, as pure data.

    config, sources = load_config(flags={"common.game": "connect4"}, backend="cpu")

Nothing in this package imports JAX: reading and checking a configuration starts no backend
(a test holds this). `load_config` layers defaults < preset < file < environment < flags and
raises a one-line `ConfigError` on any problem.
"""

from cartridge_jax.config.layering import (
                                           CONFIG_FILE_ENV,
                                           ENV_PREFIX,
                                           JAX_CACHE_DIR_ENV,
                                           ConfigError,
                                           config_keys,
                                           format_config,
                                           load_config,
)
from cartridge_jax.config.presets import PRESETS
from cartridge_jax.config.schema import (
                                           GAME_IDS,
                                           CommonConfig,
                                           Config,
                                           DistributedConfig,
                                           EvaluationConfig,
                                           ExportConfig,
                                           MctsConfig,
                                           ModelConfig,
                                           SelfplayConfig,
                                           TrainingConfig,
)

__all__ = [
    "CONFIG_FILE_ENV", "ENV_PREFIX", "GAME_IDS", "JAX_CACHE_DIR_ENV", "PRESETS", "CommonConfig",
    "Config", "ConfigError", "DistributedConfig", "EvaluationConfig", "ExportConfig",
    "MctsConfig", "ModelConfig", "SelfplayConfig", "TrainingConfig", "config_keys",
    "format_config", "load_config",
]
