"""Scale-out: the data-parallel mesh (4 simulated CPU devices) and two processes joined by
jax.distributed.

The 4-device tests need XLA_FLAGS set before JAX starts, so `test_on_four_devices` reruns this
module in a child process with 4 CPU devices, where the `four_devices` tests run (and are
skipped in the parent process).
"""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from helpers import TINY_TOML

from cartridge_jax import config as config_lib
from cartridge_jax import games, opponents, parallel
from cartridge_jax.bench import scaling
from cartridge_jax.evaluation import agents, arena, position_sets
from cartridge_jax.evaluation.evaluator import Evaluator
from cartridge_jax.model import nets
from cartridge_jax.run import checkpoint as checkpoint_lib
from cartridge_jax.run import stats
from cartridge_jax.training import loop, replay
from cartridge_jax.training.trainer import Trainer

ROOT = pathlib.Path(__file__).resolve().parent.parent
LEGACY_RUN = pathlib.Path(__file__).parent / "fixtures" / "run_f861b90"  # saved by f861b90
FOUR_DEVICES = "--xla_force_host_platform_device_count=4"
four_devices = pytest.mark.skipif(jax.device_count() != 4,
                                  reason="runs in test_on_four_devices' child process")


@pytest.fixture(scope="module")
def tiny_toml(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


def _config(toml, run_dir="unused", **flags) -> config_lib.Config:
    flags = {"common.run_dir": str(run_dir), **flags}
    return config_lib.load_config(config_file=str(toml), env={}, flags=flags)[0]


def _child_env(tmp_path, **extra) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CARTRIDGE_")}
    env.update(PYTHONPATH=str(ROOT), CARTRIDGE_JAX_CACHE_DIR=str(ROOT / ".jax_cache"),
               HOME=str(tmp_path), **extra)
    return env


# ---------------------------------------------------------------------------------------------
# Settings and their errors (no devices needed).


@pytest.mark.parametrize("flags, message", [
    ({"distributed.coordinator_address": "127.0.0.1:1234"},
     "[distributed] coordinator_address is set but initialize is false: add "
     "--distributed.initialize true"),
    ({"distributed.initialize": "true", "distributed.num_processes": "2",
      "distributed.process_id": "2"},
     "[distributed] process_id 2 must be below num_processes 2"),
    ({"distributed.process_id": "-2"}, "distributed.process_id = -2"),
])
def test_inconsistent_distributed_settings_are_refused(flags, message):
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.load_config(env={}, flags=flags)
    assert message in str(error.value)


@pytest.mark.parametrize("key, value, message", [
    ("selfplay.games", 30, "selfplay.games = 30 does not split evenly over 4 devices: use a "
                           "multiple of 4, e.g. --selfplay.games 32"),
    ("training.batch_size", 6, "training.batch_size = 6 does not split evenly over 4 devices: "
                               "use a multiple of 4, e.g. --training.batch_size 8"),
])
def test_batches_must_split_evenly_over_the_devices(tiny_toml, key, value, message):
    config = _config(tiny_toml, **{key: value})
    with pytest.raises(config_lib.ConfigError, match="^" + message.replace(".", r"\.")):
        parallel.check_divisible(config, 4)
    parallel.check_divisible(config, 2 if value % 2 == 0 else 1)  # no error


def test_join_failure_is_one_line_naming_the_settings(tmp_path):
    # A coordinator nobody answers: the process gives up after the timeout with a clear error.
    script = ("from cartridge_jax import cli; import sys; sys.exit(cli.main(['train', "
              "'--distributed.initialize', 'true', '--distributed.coordinator_address', "
              f"'127.0.0.1:{_free_port()}', '--distributed.num_processes', '2', "
              "'--distributed.process_id', '1', '--distributed.timeout_s', '2']))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=_child_env(tmp_path), cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("cartridge-jax train: error: distributed.coordinator_address = "
                           "127.0.0.1:"), result.stderr
    assert last.endswith("no coordinator answered in 2 s; start process 0 there or fix the "
                         "address (docs/scaling.md)"), result.stderr
    assert not (tmp_path / "data").exists()  # nothing written


# ---------------------------------------------------------------------------------------------
# Four simulated devices, in a child process.


@pytest.mark.skipif(jax.device_count() == 4, reason="this is the child process")
def test_on_four_devices(tmp_path):
    """Runs this module's `four_devices` tests with 4 CPU devices: all must pass, none skip."""
    env = _child_env(tmp_path, XLA_FLAGS=FOUR_DEVICES)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
         "-k", "test_four_devices", "--rootdir", str(ROOT), __file__],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert "skipped" not in summary and f"{_count_four_device_tests()} passed" in summary, summary


def _count_four_device_tests() -> int:
    return sum(1 for name in globals() if name.startswith("test_four_devices"))


def _trainers(toml, **flags) -> tuple[Trainer, Trainer]:
    """The same configuration on the first device alone and on all four."""
    config = _config(toml, **flags)
    return Trainer(config, parallel.data_mesh(jax.devices()[:1])), \
        Trainer(config)


@four_devices
def test_four_devices_train_like_one(tiny_toml):
    """A training chunk on the same replay (global sampling indices) gives the same losses and
    parameters on 4 devices as on 1, and the 4-device program averages gradients with an
    all-reduce."""
    one, four = _trainers(tiny_toml, **{"training.steps_per_iteration": 3})
    assert four.mesh.size == 4 and one.mesh.size == 1
    state = one.initial_state()
    games, buffer, _ = one.selfplay(state.train_state.params, state.games, state.buffer,
                                    jax.random.key(1))
    assert int(replay.size(buffer)) > 0
    key = jax.random.key(2)
    host = jax.device_get((state.train_state, buffer))

    def train(trainer):
        train_state, buffer = jax.device_put(
            host, (trainer.shardings.train_state, trainer.shardings.buffer))
        assert len(buffer.observation.sharding.device_set) == trainer.mesh.size
        return jax.device_get(trainer.train(train_state, buffer, key, 0.0))

    (state_1, losses_1), (state_4, losses_4) = train(one), train(four)
    np.testing.assert_allclose(losses_4.total, losses_1.total, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 state_4.params, state_1.params)
    assert int(state_4.step) == 3
    train_state, buffer = jax.device_put(host, (four.shardings.train_state, four.shardings.buffer))
    hlo = four.train.lower(train_state, buffer, key, 0.0).compile().as_text()
    assert "all-reduce" in hlo


@four_devices
def test_four_devices_selfplay_keeps_games_and_replay_split(tiny_toml):
    _, four = _trainers(tiny_toml)
    state = four.initial_state()
    start_moves = np.asarray(state.games.move_number)  # the call donates (deletes) its games
    games, buffer, finished = four.selfplay(state.train_state.params, state.games, state.buffer,
                                            jax.random.key(0))
    # 8 games, 2 on each device: the games and the replay's game columns stay where they are.
    assert {shard.data.shape for shard in games.move_number.addressable_shards} == {(2,)}
    for leaf in (buffer.observation, buffer.complete):
        assert len({shard.device for shard in leaf.addressable_shards}) == 4
        assert {shard.data.shape[1] for shard in leaf.addressable_shards} == {2}
    # Every game moved once per self-play move; the games finished are counted over all devices.
    moves = np.asarray(games.move_number) - start_moves
    restarted = moves != 8
    assert int(finished) >= restarted.sum() > 0


@four_devices
def test_four_devices_whole_run_resumes_a_legacy_checkpoint(tiny_toml, tmp_path):
    """Iterations run end to end on 4 devices, resuming a checkpoint saved on one device by an
    earlier version (tests/fixtures/run_f861b90, before scale-out)."""
    run_dir = tmp_path / "run"
    shutil.copytree(LEGACY_RUN, run_dir)
    config = _config(LEGACY_RUN / "config.toml", run_dir, **{"training.iterations": 2})
    result = loop.run(config, progress=False, out=open(os.devnull, "w"))
    assert [point.iteration for point in result.history] == [1, 2]
    assert result.history[-1].step == 8  # 4 steps in the legacy iteration, 4 now
    assert stats.read_stats(run_dir / "stats.json").last_checkpoint == 2
    with checkpoint_lib.Checkpoints(run_dir / "checkpoints", max_to_keep=3) as saved:
        assert saved.iterations() == [1, 2]


@four_devices
def test_four_devices_split_evaluation_matches_and_positions(tiny_toml):
    game, mesh, key = games.make("tictactoe"), parallel.data_mesh(), jax.random.key(0)
    perfect = opponents.builtin_agent(game, "perfect")
    # A match of 10 games: 4 (2 per colour) on each of the 4 devices; perfect play never loses.
    wins, draws, losses = (int(count) for count in arena.match(
        game, perfect, opponents.builtin_agent(game, "random"), 10, key, mesh))
    assert wins + draws + losses == 16 and losses == 0 and wins > draws
    # Positions split over the devices get the moves they get on one device (a deterministic
    # agent: the raw network's most likely move), and perfect play stays perfect.
    positions = position_sets.tictactoe_positions()
    network = nets.make_network(_config(tiny_toml).model, game)
    raw = agents.search_agent(game, network.apply, nets.init_params(network, game, key), 0)
    one_device = agents.actions_in_chunks(raw, positions.states, key, 99)
    np.testing.assert_array_equal(
        agents.actions_in_chunks(raw, positions.states, key, 99, mesh), one_device)
    assert positions.measure(perfect, key, mesh=mesh)["optimal_rate"] == 1.0
    # The evaluation runs on this process's 4 devices.
    trainer = Trainer(_config(tiny_toml))
    assert Evaluator(trainer.config, game, trainer.network.apply, trainer.mesh).mesh.size == 4


@four_devices
def test_four_devices_scaling_bench_covers_1_2_4():
    rows = scaling.measure(["tictactoe"], ["tiny"], 1, games=8, moves=2, train_steps=2)
    assert [row["devices"] for row in rows] == [1, 2, 4]
    assert all(row["positions_per_s"] > 0 and row["steps_per_s"] > 0 for row in rows)
    assert rows[2]["selfplay_speedup"] == rows[2]["positions_per_s"] / rows[0]["positions_per_s"]


# ---------------------------------------------------------------------------------------------
# Two processes joined by jax.distributed.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("devices_per_process", [1, 2])
def test_two_processes_train_together(tiny_toml, tmp_path, devices_per_process):
    """Two processes (coordinator on 127.0.0.1) train two iterations together: both exit 0,
    process 0 alone prints and writes stats.json, the checkpoint holds both processes' games,
    and one process can resume it alone."""
    run_dir, port = tmp_path / "run", _free_port()
    env = _child_env(tmp_path, XLA_FLAGS=f"--xla_force_host_platform_device_count="
                                         f"{devices_per_process}")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "cartridge_jax", "train", "--config", str(tiny_toml),
             "--run-dir", str(run_dir), "--iterations", "2", "--no-progress",
             "--distributed.initialize", "true",
             "--distributed.coordinator_address", f"127.0.0.1:{port}",
             "--distributed.num_processes", "2", "--distributed.process_id", str(index)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
        for index in range(2)]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], "\n".join(outputs)
    devices = 2 * devices_per_process
    assert f"on {devices} cpu devices in 2 processes" in outputs[0]
    assert "iter 2/2" in outputs[0]
    assert "Training" not in outputs[1] and "iter" not in outputs[1]

    run = stats.read_stats(run_dir / "stats.json")
    assert [point.iteration for point in run.history] == [1, 2]
    assert run.positions_generated == 2 * 8 * 8  # 8 games x 8 moves, twice
    assert (run_dir / "checkpoints" / "2").is_dir()

    # One process alone picks the run up: the two-process checkpoint restores onto one device.
    result = subprocess.run(
        [sys.executable, "-m", "cartridge_jax", "train", "--config", str(tiny_toml),
         "--run-dir", str(run_dir), "--iterations", "3", "--no-progress"],
        capture_output=True, text=True, env=_child_env(tmp_path), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Resuming" in result.stderr and "after iteration 2" in result.stderr
    assert json.loads((run_dir / "stats.json").read_text())["last_checkpoint"] == 3


def test_package_version_is_the_installed_distributions():
    """What benchmarks and export errors report: the installed version, None when absent."""
    assert parallel.package_version("jax") == jax.__version__
    assert parallel.package_version("no-such-distribution-for-cartridge") is None
