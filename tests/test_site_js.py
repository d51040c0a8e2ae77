"""The site's JS: its unit tests under Node, and the fixtures they replay kept in step with the
JAX rules (scripts/write_js_fixtures.py must reproduce the committed files byte for byte)."""

import importlib.util
import json
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
NODE = shutil.which("node")


def _fixture_writer():
    spec = importlib.util.spec_from_file_location(
        "write_js_fixtures", REPO / "scripts" / "write_js_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_fixtures_are_what_the_jax_rules_write(tmp_path):
    writer = _fixture_writer()
    written = writer.write_fixtures(tmp_path)
    committed = sorted(path.name for path in writer.FIXTURES_DIR.glob("*.json"))
    assert committed == sorted(path.name for path in written)
    for path in written:
        assert path.stat().st_size < 300_000, f"{path.name} is too large to commit"
        stale = path.read_bytes() != (writer.FIXTURES_DIR / path.name).read_bytes()
        assert not stale, (f"site/tests/fixtures/{path.name} is stale: run "
                           "python scripts/write_js_fixtures.py and commit the result")


@pytest.mark.skipif(NODE is None, reason="node is not on PATH: install Node.js 20 or newer to "
                    "run the site's JS tests")
def test_node_unit_tests_pass():
    done = subprocess.run([NODE, "--test", "site/tests/"], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout


@pytest.mark.skipif(NODE is None, reason="node is not on PATH: install Node.js 20 or newer to "
                    "run the site's JS tests")
def test_the_latency_script_times_every_bot_move_of_a_shipped_model():
    done = subprocess.run([NODE, "site/scripts/latency.mjs", "site/models/connect4", "4,8", "1"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["game"], row["simulations"]) for row in rows] == [("connect4", 4), ("connect4", 8)]
    for row in rows:  # a Connect 4 game after 4 random plies has 3 to 38 bot moves
        assert 3 <= row["moves"] <= 38
        assert 0 <= row["median_ms"] <= row["p90_ms"] <= row["max_ms"] and row["max_ms"] > 0
    bad = subprocess.run([NODE, "site/scripts/latency.mjs", "site/models/connect4", "0"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and '"0"' in bad.stderr
