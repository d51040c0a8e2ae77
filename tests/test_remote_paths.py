"""Run directories and export targets on gs://: stats.json, parameter snapshots and exports
round-trip through a remote path (etils' epath, mocked onto a local folder) and land where the
path says.

Checkpoints are orbax's, which writes gs:// with tensorstore's own driver: not mocked here.
"""

import json
import os

import jax
import numpy as np
import pytest
from etils.epath import testing as epath_testing

from cartridge_jax import config as config_lib
from cartridge_jax import games
from cartridge_jax.config import ExportConfig, ModelConfig
from cartridge_jax.model import export, nets
from cartridge_jax.run import checkpoint, layout
from cartridge_jax.run import stats as stats_lib
from cartridge_jax.web import ship

RUN = "gs://bucket/runs/t"
TINY_MLP = ModelConfig(kind="mlp", mlp_hidden=(16, 16), value_hidden=8)
FILES = [export.MODEL_FILE, export.PARAMS_FILE, export.NETWORK_FILE, export.MANIFEST_FILE]


@pytest.fixture
def bucket(tmp_path, monkeypatch):
    """The local folder that gs://... is mapped onto (gs://bucket/x is <folder>/bucket/x).

    The test runs in an empty working folder that must stay empty: a gs:// path that lost its
    scheme on the way (pathlib turns it into the relative "gs:/bucket/...") would land there.
    """
    root, work = tmp_path / "gcs", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)

    def local(path):
        text = os.fspath(path)
        return os.path.join(root, text.removeprefix("gs://")) if text.startswith("gs://") else text

    def one(original, path, *args, **kwargs):
        return original(local(path), *args, **kwargs)

    def two(original, path, destination, *args, **kwargs):
        return original(local(path), local(destination), *args, **kwargs)

    def glob(original, pattern):  # matches of a gs:// pattern come back under gs://, as on GCS
        matches = original(local(pattern))
        if not os.fspath(pattern).startswith("gs://"):
            return matches
        return ["gs://" + os.path.relpath(match, root) for match in matches]

    with epath_testing.mock_epath(open=one, exists=one, isdir=one, listdir=one, makedirs=one,
                                  mkdir=one, remove=one, stat=one, glob=glob, rename=two,
                                  replace=two):
        yield root
    assert not os.listdir(work)


def _stats():
    stats = stats_lib.new_stats("tictactoe", "run-1", {"common": {"game": "tictactoe"}})
    return stats.model_copy(update={"iteration": 2, "step": 8})


def test_stats_round_trip_through_a_remote_run_dir(bucket):
    config, _ = config_lib.load_config(env={}, flags={"common.run_dir": RUN})
    path = layout.run_dir(config) / "stats.json"
    assert str(path) == f"{RUN}/stats.json"
    stats_lib.write_stats(path, _stats())
    assert stats_lib.read_stats(f"{RUN}/stats.json") == _stats()
    assert os.listdir(bucket / "bucket/runs/t") == ["stats.json"]  # no temporary file left
    assert json.loads((bucket / "bucket/runs/t/stats.json").read_text())["step"] == 8
    assert layout.recorded_config(RUN).common.run_dir == RUN
    with pytest.raises(stats_lib.StatsError, match="^no stats file at gs://bucket/nothing/"):
        stats_lib.read_stats("gs://bucket/nothing/stats.json")


def test_snapshots_round_trip_through_a_remote_run_dir(bucket):
    params = {"dense": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}}
    for iteration in (10, 3):
        checkpoint.save_snapshot(RUN, iteration, params)
    found = checkpoint.snapshots(RUN)
    assert list(found) == [3, 10]
    assert str(found[3]) == str(checkpoint.snapshot_path(RUN, 3))
    assert str(found[3]) == f"{RUN}/snapshots/iter_3.msgpack"
    assert sorted(os.listdir(bucket / "bucket/runs/t/snapshots")) == ["iter_10.msgpack",
                                                                     "iter_3.msgpack"]
    loaded = checkpoint.load_snapshot(found[10], params)
    np.testing.assert_array_equal(loaded["dense"]["w"], params["dense"]["w"])
    with pytest.raises(checkpoint.CheckpointError, match=f"^cannot read snapshot {RUN}/nope"):
        checkpoint.load_snapshot(f"{RUN}/nope.msgpack", params)


def _export_tiny(folder):
    """(game, params, manifest) of a tiny TicTacToe MLP exported to `folder`."""
    game = games.make("tictactoe")
    network = nets.make_network(TINY_MLP, game)
    params = nets.init_params(network, game, jax.random.key(0))
    manifest = export.export_model(game, network, params, TINY_MLP, folder, step=4, iteration=1,
                                   opset=ExportConfig().onnx_opset,
                                   ir_version=ExportConfig().onnx_ir_version)
    return game, params, manifest


def test_export_round_trips_through_a_remote_folder(bucket):
    folder = layout.model_dir(RUN, "tictactoe")
    assert str(folder) == f"{RUN}/models/tictactoe"
    game, params, manifest = _export_tiny(folder)
    assert sorted(os.listdir(bucket / "bucket/runs/t/models/tictactoe")) == sorted(FILES)
    loaded_game, _, loaded_params, loaded_manifest = export.load_exported(str(folder))
    assert loaded_game is game and loaded_manifest == manifest
    jax.tree.map(np.testing.assert_array_equal, loaded_params, params)
    with pytest.raises(export.ExportError, match="^no manifest.json in gs://bucket/empty:"):
        export.load_exported("gs://bucket/empty")


def test_ship_copies_a_remote_run_into_a_local_folder(bucket, tmp_path, monkeypatch):
    _, _, manifest = _export_tiny(layout.model_dir(RUN, "tictactoe"))
    stats_lib.write_stats(f"{RUN}/stats.json", _stats())
    monkeypatch.setattr(ship, "run_suite", lambda *args, **kwargs: [])  # strength: elsewhere
    config, _ = config_lib.load_config(env={}, flags={"common.game": "tictactoe"})
    dest = tmp_path / "site" / "tictactoe"
    card = ship.ship(RUN, dest, config, command="train")
    assert sorted(os.listdir(dest)) == sorted([*FILES, ship.STATS_FILE, ship.CARD_FILE])
    assert card["model_sha256"] == manifest["sha256"] and card["step"] == 4
    assert (dest / export.MODEL_FILE).read_bytes() == (
        bucket / "bucket/runs/t/models/tictactoe" / export.MODEL_FILE).read_bytes()
