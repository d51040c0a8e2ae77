"""Shared test set-up: a persistent compilation cache, so reruns and CI skip repeated compiles."""

import pathlib

import jax

CACHE_DIR = pathlib.Path(__file__).resolve().parent.parent / ".jax_cache"

jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
