"""Shared test set-up: a persistent compilation cache, so reruns and CI skip repeated compiles."""

import os
import pathlib

import jax
import pytest

CACHE_DIR = pathlib.Path(__file__).resolve().parent.parent / ".jax_cache"

jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture
def run_cli(monkeypatch, capsys, tmp_path):
    """cli.main in-process from an empty folder with no CARTRIDGE_* variables: a function
    (*argv) -> (status, out, err).

    Restores the JAX compilation-cache settings that commands change, so later tests are
    unaffected.
    """
    from cartridge_jax import cli

    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("CARTRIDGE_")]:
        monkeypatch.delenv(name)
    saved = {name: getattr(jax.config, name) for name in (
        "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")}

    def run(*argv):
        capsys.readouterr()
        try:
            status = cli.main(list(argv))
        except SystemExit as exit_:
            status = exit_.code
        finally:
            for name, value in saved.items():
                jax.config.update(name, value)
        out, err = capsys.readouterr()
        return status, out, err

    return run
