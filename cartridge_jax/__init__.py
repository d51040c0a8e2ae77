"""cartridge-jax: AlphaZero for board games in JAX.

Public surface (loaded on first use, so `import cartridge_jax.config` starts no JAX):
  games            the game registry (`games.make(name)`, `games.names()`) and the contract
  perft            move-path and position counts (the rules' fingerprint)
  Config, load_config, ConfigError
                   the typed configuration (defaults < preset < file < environment < flags)
  train            trains a configuration, resuming from its run directory
  search_agent, load_model
                   THE agent (Gumbel MuZero over the network) and the one loader of model paths
  export_model     ONNX export of a network with its parameters and manifest

Layers, bottom to top (each imports only those below it; docs/architecture.md):
  _files, solvers, config -> games -> parallel -> run -> model -> opponents -> evaluation
  -> training -> play, web, bench -> cli
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute); None as attribute: the module itself
_PUBLIC = {
    "games": ("cartridge_jax.games", None),
    "perft": ("cartridge_jax.games.perft", None),
    "Config": ("cartridge_jax.config", "Config"),
    "ConfigError": ("cartridge_jax.config", "ConfigError"),
    "load_config": ("cartridge_jax.config", "load_config"),
    "train": ("cartridge_jax.training.loop", "run"),
    "search_agent": ("cartridge_jax.evaluation.agents", "search_agent"),
    "load_model": ("cartridge_jax.model.load", "load_model"),
    "export_model": ("cartridge_jax.model.export", "export_model"),
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    """PEP 562: the public names are imported when first used."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'cartridge_jax' has no attribute {name!r}")
    module_name, attribute = _PUBLIC[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
