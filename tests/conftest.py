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


CHROMIUM = pathlib.Path("/usr/bin/chromium")
# Flags that run Debian's chromium as root in a container (DESIGN.md, "Testing in a real
# browser"); playwright adds a fresh --user-data-dir.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# One session-wide browser for every browser test module: a second sync_playwright started
# while the first is alive fails ("Sync API inside the asyncio loop").
@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
