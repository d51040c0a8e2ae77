"""`ship`: every exported file checked against its manifest's sha256 before it goes live, the
destination left whole when a check fails, world-readable modes whatever the umask, and a card
that says which file its measures ran on.

The strength suite is replaced by an empty one (it takes minutes; tests/test_shipped_models.py
recomputes a shipped row); the export is a tiny TicTacToe MLP.
"""

import hashlib
import json
import os
import pathlib
import stat

import jax
import pytest

from cartridge_jax import config as config_lib
from cartridge_jax import games
from cartridge_jax.config import ExportConfig, ModelConfig
from cartridge_jax.model import export, nets
from cartridge_jax.run import layout
from cartridge_jax.run import stats as stats_lib
from cartridge_jax.web import ship

TINY_MLP = ModelConfig(kind="mlp", mlp_hidden=(16, 16), value_hidden=8)
SHIPPED = [export.MODEL_FILE, export.PARAMS_FILE, export.NETWORK_FILE, export.MANIFEST_FILE,
           ship.STATS_FILE, ship.CARD_FILE]


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source(run_dir: pathlib.Path) -> pathlib.Path:
    """The run's export folder, as a local path."""
    return pathlib.Path(layout.model_dir(run_dir, "tictactoe"))


def _contents(folder: pathlib.Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A run directory with a tiny TicTacToe export and its stats.json; the suite stubbed out."""
    monkeypatch.setattr(ship, "run_suite", lambda *args, **kwargs: [])
    run = tmp_path / "run"
    game = games.make("tictactoe")
    network = nets.make_network(TINY_MLP, game)
    params = nets.init_params(network, game, jax.random.key(0))
    export.export_model(game, network, params, TINY_MLP, _source(run),
                        step=4, iteration=1, opset=ExportConfig().onnx_opset,
                        ir_version=ExportConfig().onnx_ir_version)
    stats = stats_lib.new_stats("tictactoe", "run-1", {"common": {"game": "tictactoe"}})
    stats_lib.write_stats(run / ship.STATS_FILE, stats.model_copy(update={"iteration": 1}))
    return run


def _ship(run_dir, dest, progress=print) -> dict:
    config, _ = config_lib.load_config(env={}, flags={"common.game": "tictactoe"})
    return ship.ship(run_dir, dest, config, command="train", progress=progress)


def test_shipped_files_match_the_recorded_sums_and_the_card_says_what_it_measured(run_dir,
                                                                                  tmp_path):
    dest = tmp_path / "site" / "tictactoe"
    card = _ship(run_dir, dest)
    assert sorted(os.listdir(dest)) == sorted(SHIPPED)
    manifest = export.read_manifest(dest)
    recorded = export.recorded_sha256(manifest)
    assert None not in recorded.values()  # a new export records every file's sum
    assert recorded == {name: _sha256(dest / name) for name in recorded}
    assert card == json.loads((dest / ship.CARD_FILE).read_text())
    assert card["model_sha256"] == _sha256(dest / export.MODEL_FILE)
    assert card["measured_on"] == (f"{export.PARAMS_FILE} "
                                   f"(sha256 {_sha256(dest / export.PARAMS_FILE)})")
    assert card["stats_sha256"] == _sha256(dest / ship.STATS_FILE)
    assert manifest == export.read_manifest(_source(run_dir))


def test_the_card_measures_at_the_bots_simulations_and_at_the_reference_count(run_dir,
                                                                            tmp_path,
                                                                            monkeypatch):
    """One suite at the manifest's simulations (the site's default), one at 128, so a card
    compares with older cards whatever its bot's default."""
    manifest = export.read_manifest(_source(run_dir))
    export.write_manifest(_source(run_dir), {**manifest, "agent": {"search": "gumbel",
                                                                   "simulations": 512}})
    monkeypatch.setattr(ship, "run_suite", lambda config, model_dir, *, sims, progress:
                        [{"measure": "stub", "simulations": sims}])
    card = _ship(run_dir, tmp_path / "dest")
    assert [row["simulations"] for row in card["evaluation"]] == [
        ship.REFERENCE_SIMULATIONS, 512]
    assert ship.card_simulations({"agent": {"simulations": 128}}) == (128,)


@pytest.mark.parametrize("damage", ["garbage", "missing"])
@pytest.mark.parametrize("name", [export.MODEL_FILE, export.PARAMS_FILE, export.NETWORK_FILE])
def test_a_damaged_export_is_refused_and_the_shipped_model_kept(run_dir, tmp_path, name,
                                                                damage):
    dest = tmp_path / "site" / "tictactoe"
    _ship(run_dir, dest)
    before = _contents(dest)
    path = _source(run_dir) / name
    if damage == "garbage":
        path.write_bytes(os.urandom(path.stat().st_size))
    else:
        path.unlink()
    expected = "is not the file manifest.json records" if damage == "garbage" else "is missing"
    with pytest.raises(export.ExportError) as refused:
        _ship(run_dir, dest)
    message = str(refused.value)
    assert str(path) in message and expected in message and "\n" not in message
    assert message.endswith(f"re-export: `python -m cartridge_jax export {run_dir}`")
    assert _contents(dest) == before
    assert os.listdir(dest.parent) == [dest.name]  # no staging folder left behind


def test_the_command_refuses_a_garbage_model_in_one_line(run_dir, tmp_path, run_cli):
    dest = tmp_path / "site" / "tictactoe"
    (_source(run_dir) / export.MODEL_FILE).write_bytes(b"not a model")
    status, _, err = run_cli("ship", str(run_dir), "--dest", str(dest))
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and export.MODEL_FILE in err
    assert "python -m cartridge_jax export" in err
    assert not dest.exists() and os.listdir(dest.parent) == []


def test_shipped_files_are_world_readable_under_a_private_umask(run_dir, tmp_path):
    dest = tmp_path / "site" / "tictactoe"
    dest.parent.mkdir()
    umask = os.umask(0o077)
    try:
        _ship(run_dir, dest)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert {name: stat.S_IMODE((dest / name).stat().st_mode) for name in os.listdir(dest)} == {
        name: 0o644 for name in SHIPPED}


def test_an_older_export_without_a_network_sum_ships_with_a_warning(run_dir, tmp_path):
    """Exports written before network_sha256 existed: the files that have a sum are checked, and
    the one that has none is named."""
    source = _source(run_dir)
    manifest = export.read_manifest(source)
    del manifest[export.SHA256_KEYS[export.NETWORK_FILE]]
    export.write_manifest(source, manifest)
    printed = []
    _ship(run_dir, tmp_path / "tictactoe", progress=printed.append)
    warning = (f"  {export.NETWORK_FILE}: {source / export.MANIFEST_FILE} records no sha256 for "
               f"it (an older export), so it is copied unchecked; re-export: `python -m "
               f"cartridge_jax export {run_dir}` to record one")
    assert [line for line in printed if "records no sha256" in line] == [warning]
    (source / export.MODEL_FILE).write_bytes(b"garbage")
    with pytest.raises(export.ExportError, match="model.onnx is not the file"):
        _ship(run_dir, tmp_path / "tictactoe")


def test_a_failed_swap_puts_the_old_model_back(run_dir, tmp_path, monkeypatch):
    dest = tmp_path / "site" / "tictactoe"
    _ship(run_dir, dest)
    before = _contents(dest)
    rename = pathlib.Path.rename

    def fail_into_dest(self, target):
        if pathlib.Path(target) == dest and self.name != f".{dest.name}-old":
            raise OSError("disk full")
        return rename(self, target)

    monkeypatch.setattr(pathlib.Path, "rename", fail_into_dest)
    with pytest.raises(OSError, match="disk full"):
        _ship(run_dir, dest)
    assert _contents(dest) == before and os.listdir(dest.parent) == [dest.name]
