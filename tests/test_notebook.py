"""notebooks/quickstart.ipynb runs top to bottom in tiny mode (CARTRIDGE_NOTEBOOK_TINY=1), as a
new user's kernel would run it, and leaves what it promises: a trained, exported model, the
training chart, evaluation results, a game against the bot and a model archive."""

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

from conftest import CACHE_DIR  # noqa: E402  (the tests' compilation cache)

NOTEBOOK = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"
TINY_ITERATIONS = 4  # training.iterations of the notebook's tiny settings

# Run in a child process: nbclient leaves an asyncio loop behind in the process that drives it,
# after which Playwright's sync API (the browser tests) refuses to start.
_EXECUTE = """
import sys, nbclient, nbformat
notebook = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(notebook, sys.argv[3])
"""


def _text(outputs) -> str:
    parts = []
    for output in outputs:
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


@pytest.mark.slow
def test_quickstart_runs_in_tiny_mode(tmp_path):
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("CARTRIDGE_")}
    env.update(CARTRIDGE_NOTEBOOK_TINY="1", CARTRIDGE_JAX_CACHE_DIR=str(CACHE_DIR))
    executed = tmp_path / "executed.ipynb"
    # A failing cell fails the child with the cell and its traceback on stderr.
    child = subprocess.run([sys.executable, "-c", _EXECUTE, str(NOTEBOOK), str(tmp_path),
                            str(executed)], env=env, capture_output=True, text=True)
    assert child.returncode == 0, child.stderr[-4000:]
    notebook = nbformat.read(executed, as_version=4)

    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = "".join(_text(cell.outputs) for cell in code_cells)
    assert "Tiny settings" in text and "pip install" not in text  # installed: no install
    assert "runs on the CPU backend" in text

    run_dir = tmp_path / "data" / "runs" / "tiny"
    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats["iteration"] == TINY_ITERATIONS
    assert {"random", "greedy"} <= {entry["opponent"] for entry in stats["eval_history"]}

    model_dir = run_dir / "models" / "tictactoe"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["iteration"] == TINY_ITERATIONS and (model_dir / "model.onnx").stat().st_size
    with zipfile.ZipFile(tmp_path / "tictactoe-model.zip") as archive:
        assert {"model.onnx", "manifest.json"} <= set(archive.namelist())

    images = [output for cell in code_cells for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert len(images) == 1 and (run_dir / "training.png").stat().st_size > 10_000

    for opponent in ("random", "greedy"):
        assert f"vs {opponent}" in text
    assert "reachable TicTacToe positions" in text
    assert "You (X) play b2" in text and "Bot (O) plays" in text
    assert "You quit. Goodbye." in text or "Result: X (you) wins." in text
