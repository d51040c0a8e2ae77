"""cartridge-jax: AlphaZero for board games in JAX.

Public surface:
  games            the game registry (`games.make(name)`, `games.names()`) and the contract
  Config, load_config, ConfigError
                   the typed configuration (defaults < preset < file < environment < flags)
  perft            move-path and position counts (the rules' fingerprint)
"""

from cartridge_jax import games, perft
from cartridge_jax.config import Config, ConfigError, load_config

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "games", "load_config", "perft", "__version__"]
