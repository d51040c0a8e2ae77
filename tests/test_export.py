"""ONNX export: parity with JAX in onnxruntime on real positions, the pinned IR version and
opset, the manifest, atomic writes (manifest last), `load_exported`, the training loop's export
and the `export` command.

Networks are tiny (wiring, not capacity). The first export in a process costs seconds however
small the network (jax2onnx imports all its plugins then); later ones take well under a second.
"""

import datetime
import functools
import hashlib
import io
import json
import os
import pathlib
import shutil

import jax
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import TINY_TOML, random_trajectory

from cartridge_jax import _files, games
from cartridge_jax import config as config_lib
from cartridge_jax.config import ExportConfig, ModelConfig
from cartridge_jax.model import export, nets
from cartridge_jax.run import layout
from cartridge_jax.training import loop

PINNED = ExportConfig()  # the configured defaults: what the web page gets
WEB_MAX_IR_VERSION = 13  # onnxruntime-web 1.30 refuses newer files (DESIGN.md)
WEB_MAX_OPSET = 26
AGENT = {"search": "gumbel", "simulations": 9}
BATCHES = (1, 7)
ATOL = 1e-4
FILES = [export.MODEL_FILE, export.PARAMS_FILE, export.NETWORK_FILE, export.MANIFEST_FILE]
MANIFEST_KEYS = {
    "game", "encoding_version", "step", "iteration", "sha256", "params_sha256", "network_sha256",
    "observation_shape", "num_actions", "created", "onnx_opset", "onnx_ir_version", "network",
    "agent",
}
SMALL = {
    "tictactoe": ModelConfig(kind="mlp", mlp_hidden=(16, 16), value_hidden=8),
    "connect4": ModelConfig(kind="resnet", resnet_blocks=1, resnet_channels=8, value_hidden=8),
    "othello": ModelConfig(kind="resnet", resnet_blocks=1, resnet_channels=8, value_hidden=8),
}


@functools.lru_cache(maxsize=None)
def small_net(name: str, dtype: str = "float32"):
    """(game, model config, network, params) of a tiny network for `name`."""
    game = games.make(name)
    model_config = SMALL[name].model_copy(update={"dtype": dtype})
    network = nets.make_network(model_config, game)
    params = nets.init_params(network, game, jax.random.key(0, impl="rbg"))
    return game, model_config, network, params


def real_positions(game, batch: int) -> np.ndarray:
    """float32[batch, rows, cols, planes]: observations from random games, early to late."""
    observations = random_trajectory(game.name)[2]  # [T + 1, B, rows, cols, planes]
    flat = observations.reshape(-1, *game.observation_shape)
    picks = np.random.default_rng(batch).choice(len(flat), batch, replace=False)
    return flat[picks].astype(np.float32)


def export_small(name, out_dir, *, dtype="float32", opset=PINNED.onnx_opset,
                 ir_version=PINNED.onnx_ir_version) -> dict:
    game, model_config, network, params = small_net(name, dtype)
    return export.export_model(game, network, params, model_config, out_dir, step=12,
                               iteration=3, opset=opset, ir_version=ir_version, agent=AGENT)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """game name -> (folder, manifest) of each game's tiny network, exported once."""
    root = tmp_path_factory.mktemp("exports")
    return {name: (root / name, export_small(name, root / name)) for name in games.names()}


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _assert_parity(session, game, network, params) -> None:
    for batch in BATCHES:
        observation = real_positions(game, batch)
        policy_logits, value = session.run(None, {export.INPUT_NAME: observation})
        expected_logits, expected_value = network.apply(params, observation)
        assert policy_logits.shape == (batch, game.num_actions) and value.shape == (batch,)
        assert policy_logits.dtype == np.float32 and value.dtype == np.float32
        np.testing.assert_allclose(policy_logits, expected_logits, atol=ATOL)
        np.testing.assert_allclose(value, expected_value, atol=ATOL)


def _opset(model: onnx.ModelProto) -> int:
    return {entry.domain or "ai.onnx": entry.version for entry in model.opset_import}["ai.onnx"]


# ---------------------------------------------------------------------------------------------
# The model file


@pytest.mark.parametrize("name", games.names())
def test_onnxruntime_matches_jax_on_real_positions(exported, name):
    game, _, network, params = small_net(name)
    _assert_parity(_session(exported[name][0] / export.MODEL_FILE), game, network, params)


@pytest.mark.parametrize("name", games.names())
def test_ir_version_opset_and_signature_are_pinned(exported, name):
    model = onnx.load(exported[name][0] / export.MODEL_FILE)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == PINNED.onnx_ir_version <= WEB_MAX_IR_VERSION
    assert _opset(model) == PINNED.onnx_opset <= WEB_MAX_OPSET
    (observation,) = model.graph.input
    assert observation.name == export.INPUT_NAME
    dims = observation.type.tensor_type.shape.dim
    assert dims[0].dim_param == export.BATCH_DIM  # a dynamic batch
    assert [d.dim_value for d in dims[1:]] == list(games.make(name).observation_shape)
    assert [output.name for output in model.graph.output] == list(export.OUTPUT_NAMES)
    for tensor in (observation, *model.graph.output):
        assert tensor.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_other_configured_versions_are_written_as_configured(tmp_path):
    export_small("tictactoe", tmp_path, opset=17, ir_version=8)
    model = onnx.load(tmp_path / export.MODEL_FILE)
    assert (model.ir_version, _opset(model)) == (8, 17)
    game, _, network, params = small_net("tictactoe")
    _assert_parity(_session(tmp_path / export.MODEL_FILE), game, network, params)


def test_an_ir_version_too_old_for_the_opset_is_refused_in_one_line(tmp_path):
    with pytest.raises(export.ExportError) as error:
        export_small("tictactoe", tmp_path / "out", opset=18, ir_version=7)
    message = str(error.value)
    assert "\n" not in message and "export.onnx_ir_version = 7" in message
    assert not (tmp_path / "out").exists()


def test_a_bfloat16_network_is_exported_as_its_float32_twin(tmp_path):
    manifest = export_small("tictactoe", tmp_path, dtype="bfloat16")
    model = onnx.load(tmp_path / export.MODEL_FILE)
    bfloat16 = onnx.TensorProto.BFLOAT16
    assert all(tensor.data_type != bfloat16 for tensor in model.graph.initializer)
    assert not [node for node in model.graph.node
                if any(a.name == "to" and a.i == bfloat16 for a in node.attribute)]
    game, model_config, _, params = small_net("tictactoe")  # the float32 network
    _assert_parity(_session(tmp_path / export.MODEL_FILE), game,
                   nets.make_network(model_config, game), params)
    assert "bfloat16" not in manifest["network"]
    network_data = json.loads((tmp_path / export.NETWORK_FILE).read_text())
    assert network_data["model"]["dtype"] == "float32"


# ---------------------------------------------------------------------------------------------
# Manifest, parameters, atomic writes


@pytest.mark.parametrize("name", games.names())
def test_manifest_describes_the_files(exported, name):
    folder, returned = exported[name]
    manifest = json.loads((folder / export.MANIFEST_FILE).read_text())
    assert manifest == returned and set(manifest) == MANIFEST_KEYS
    game, _, network, params = small_net(name)
    assert manifest["game"] == name and manifest["encoding_version"] == game.encoding_version
    assert (manifest["step"], manifest["iteration"]) == (12, 3)
    assert manifest["observation_shape"] == list(game.observation_shape)
    assert manifest["num_actions"] == game.num_actions
    assert (manifest["onnx_opset"], manifest["onnx_ir_version"]) == (
        PINNED.onnx_opset, PINNED.onnx_ir_version)
    assert manifest["network"] == nets.describe(network, params)
    assert manifest["agent"] == AGENT
    # Every file the export writes besides the manifest has its sum recorded (ship checks them).
    assert export.recorded_sha256(manifest) == {
        file: hashlib.sha256((folder / file).read_bytes()).hexdigest()
        for file in FILES if file != export.MANIFEST_FILE}
    assert export.SHA256_KEYS[export.MODEL_FILE] == "sha256"  # the key the web page reads
    created = datetime.datetime.fromisoformat(manifest["created"])
    assert created.utcoffset() == datetime.timedelta(0)
    assert abs(datetime.datetime.now(datetime.timezone.utc) - created).total_seconds() < 3600


@pytest.mark.parametrize("name", games.names())
def test_load_exported_round_trips_params_exactly(exported, name):
    game, network, params, manifest = export.load_exported(exported[name][0])
    expected_game, _, expected_network, expected_params = small_net(name)
    assert game is expected_game and network == expected_network
    assert manifest == exported[name][1]
    leaves, tree = jax.tree.flatten(params)
    expected_leaves, expected_tree = jax.tree.flatten(expected_params)
    assert tree == expected_tree
    for leaf, expected in zip(leaves, expected_leaves):
        assert leaf.dtype == expected.dtype and np.array_equal(leaf, expected)


def test_load_exported_refuses_mismatched_files(exported, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(exported["tictactoe"][0], folder)
    params_bytes = (folder / export.PARAMS_FILE).read_bytes()
    (folder / export.PARAMS_FILE).write_bytes(params_bytes[:-1] + b"\0")
    with pytest.raises(export.ExportError, match="interrupted export"):
        export.load_exported(folder)

    (folder / export.PARAMS_FILE).write_bytes(params_bytes)
    network_data = json.loads((folder / export.NETWORK_FILE).read_text())
    (folder / export.NETWORK_FILE).write_text(json.dumps({**network_data, "encoding_version": 0}))
    with pytest.raises(export.ExportError, match="encoding 0"):
        export.load_exported(folder)

    with pytest.raises(export.ExportError, match="no manifest.json"):
        export.load_exported(tmp_path / "nothing")


def test_files_are_written_atomically_and_the_manifest_last(monkeypatch, tmp_path):
    export_small("tictactoe", tmp_path)  # exporting over an existing export, as the loop does
    written = []
    write = _files.atomic_write_bytes

    def record(path, data):
        written.append(pathlib.Path(path).name)
        write(path, data)

    monkeypatch.setattr(_files, "atomic_write_bytes", record)  # atomic_write_text calls it too
    export_small("tictactoe", tmp_path)
    assert sorted(written) == sorted(FILES) and written[-1] == export.MANIFEST_FILE
    assert sorted(os.listdir(tmp_path)) == sorted(FILES)  # no temporary files left


def test_a_failed_atomic_write_keeps_the_old_file(monkeypatch, tmp_path):
    path = tmp_path / "model.onnx"
    _files.atomic_write_bytes(path, b"old")

    def fail(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        _files.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.onnx"]


# ---------------------------------------------------------------------------------------------
# The training loop's export and the `export` command



@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """(run_dir, printed output) of a 1-iteration run that exported at its checkpoint."""
    root = tmp_path_factory.mktemp("trained")
    (root / "tiny.toml").write_text(TINY_TOML)
    flags = {"common.run_dir": str(root / "run"), "training.iterations": 1,
             "evaluation.interval": 0, "export.enabled": True}
    config, _ = config_lib.load_config(config_file=str(root / "tiny.toml"), env={}, flags=flags)
    out = io.StringIO()
    loop.run(config, out=out, progress=False)
    return root / "run", out.getvalue()


def test_training_exports_at_each_checkpoint(trained_run):
    run_dir, output = trained_run
    folder = layout.model_dir(run_dir, "tictactoe")
    assert sorted(os.listdir(folder)) == sorted(FILES)
    manifest = json.loads((folder / export.MANIFEST_FILE).read_text())
    assert (manifest["iteration"], manifest["step"]) == (1, 4)
    # The web bot's default strength: the agent's search at the evaluation's simulations (4 in
    # TINY_TOML).
    assert manifest["agent"] == {"search": "gumbel", "simulations": 4}
    assert output.count("Exported the network to") == 1
    game, network, params, _ = export.load_exported(folder)
    _assert_parity(_session(folder / export.MODEL_FILE), game, network, params)


def test_a_failing_converter_stops_exporting_not_training(tmp_path, monkeypatch):
    """A jax2onnx that breaks under the installed jax (0.17.1 raised AttributeError under jax
    0.11.2) is reported once, with what to do; training runs to its end."""
    import jax2onnx

    def broken(*args, **kwargs):
        raise AttributeError("module 'jax.core' has no attribute 'Literal'")

    monkeypatch.setattr(jax2onnx, "to_onnx", broken)
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    run_dir = tmp_path / "run"
    flags = {"common.run_dir": str(run_dir), "training.iterations": 2, "evaluation.interval": 0,
             "export.enabled": True, "export.interval": 1, "export.min_interval_s": 0}
    config, _ = config_lib.load_config(config_file=str(tmp_path / "tiny.toml"), env={},
                                       flags=flags)
    out = io.StringIO()
    stats = loop.run(config, out=out, progress=False)
    assert stats.iteration == 2 and stats.last_checkpoint == 2
    printed = out.getvalue()
    warnings = [line for line in printed.splitlines() if line.startswith("Warning: export")]
    assert len(warnings) == 1, printed
    assert "jax2onnx" in warnings[0] and "AttributeError: module 'jax.core'" in warnings[0]
    assert f"cartridge-jax export {run_dir}" in printed
    assert not (layout.model_dir(run_dir, "tictactoe") / export.MANIFEST_FILE).exists()


def test_export_command_exports_the_latest_checkpoint(trained_run, run_cli, tmp_path):
    run_dir, _ = trained_run
    status, out, err = run_cli("export", str(run_dir), "--out", str(tmp_path / "out"))
    assert status == 0, err
    assert f"Exported iteration 1 (step 4) of {run_dir}" in out
    assert sorted(os.listdir(tmp_path / "out")) == sorted(FILES)
    by_loop = json.loads((layout.model_dir(run_dir, "tictactoe") / export.MANIFEST_FILE).read_text())
    by_command = json.loads((tmp_path / "out" / export.MANIFEST_FILE).read_text())
    assert {**by_command, "created": None} == {**by_loop, "created": None}

    copy = tmp_path / "copy"  # the default output folder, in a copy of the run
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("models"))
    status, _, err = run_cli("export", str(copy))
    assert status == 0, err
    assert sorted(os.listdir(layout.model_dir(copy, "tictactoe"))) == sorted(FILES)


def test_an_export_is_exported_again_with_new_export_settings(trained_run, run_cli, tmp_path):
    """`export EXPORT_FOLDER --out DIR --export.simulations N`: the same network and parameters
    (byte for byte), iteration and step; only the bot's default simulations change."""
    source = layout.model_dir(trained_run[0], "tictactoe")
    out = tmp_path / "again"
    status, _, err = run_cli("export", str(source), "--out", str(out),
                             "--export.simulations", "512")
    assert status == 0, err
    before, after = export.read_manifest(source), export.read_manifest(out)
    assert after["agent"] == {"search": "gumbel", "simulations": 512}
    assert before["agent"]["simulations"] == 4  # TINY_TOML's evaluation.simulations
    same = ("sha256", "params_sha256", "network_sha256", "iteration", "step", "network")
    assert {key: after[key] for key in same} == {key: before[key] for key in same}

    status, _, err = run_cli("export", str(source))  # no --out: it would write inside the export
    assert status == 2 and "--out" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("problem", ["missing", "empty", "bad stats"])
def test_export_command_errors_are_one_line_with_status_2(run_cli, tmp_path, problem):
    run_dir = tmp_path / "run"
    if problem != "missing":
        run_dir.mkdir()
    if problem == "bad stats":
        (run_dir / "stats.json").write_text("{")
    status, _, err = run_cli("export", str(run_dir))
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert str(run_dir) in err


def test_export_command_has_help(run_cli):
    status, out, _ = run_cli("export", "--help")
    assert status == 0 and "RUN_DIR" in out and "--out" in out


def test_jax2onnx_still_has_the_plugin_loading_hook():
    """export._load_plugin_families loads only the jax and flax plugin families through these
    names; a jax2onnx without them would silently load every family again (~5 s more)."""
    from jax2onnx.plugins import plugin_system

    assert callable(plugin_system._import_tree)
    assert isinstance(plugin_system._already_imported_plugins, bool)
    root = pathlib.Path(plugin_system.__file__).parent
    assert all((root / family).is_dir() for family in export.PLUGIN_FAMILIES)
