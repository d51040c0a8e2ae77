"""Fault injection: a training run killed, interrupted or damaged at each place it can be loses
no completed iteration, and its rerun ends with the parameters of an uninterrupted run, bit for
bit (same seed, same result).

Every test trains the tiny TicTacToe configuration (tests/helpers.py) for `ITERATIONS` quick
iterations without evaluation, and compares with one uninterrupted reference run (`reference`).
Processes that must die are `python -m cartridge_jax train` subprocesses; a fault point
(cartridge_jax/run/faults.py) kills one with SIGKILL at a named place of an iteration. Files
are damaged in copies of the reference run. docs/troubleshooting.md ("When a run is
interrupted or damaged") lists each fault with the test that holds it.
"""

import errno
import io
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time

import orbax.checkpoint as ocp
import pytest
from helpers import TINY_TOML, start_training, trees_equal

from cartridge_jax import config as config_lib
from cartridge_jax.model import export, load
from cartridge_jax.run import checkpoint as checkpoint_lib
from cartridge_jax.run import faults, layout
from cartridge_jax.run import stats as stats_lib
from cartridge_jax.training import loop

# Enough iterations (about 0.1 s each) that a signal sent after iteration 2 lands mid-run.
# training.iterations shapes the learning-rate schedule: every run here uses the same value.
ITERATIONS = 16
POSITIONS = 8 * 8  # selfplay.games x moves_per_iteration: positions of one iteration
FLAGS = {"training.iterations": ITERATIONS, "evaluation.interval": 0}
# Exports in every checkpoint's background (`export` point) when one is not running already.
EXPORT_FLAGS = {"export.enabled": "true", "export.interval": 1, "export.min_interval_s": 0}
KILLED_AT = 3  # fault points kill a new run here: 1 and 2 are committed, 2 maybe just now
# An export starts at the first checkpoint of a process, and later only once the one before is
# done (seconds: many iterations later). So the `export` point kills a rerun of the reference
# run cut back to this iteration, in the next one, its first checkpoint.
EXPORT_RESUMES_AFTER = ITERATIONS - 2
TIMEOUT_S = 120  # for any one training process
TERM_EXIT_S = 5  # a scheduler's SIGKILL follows SIGTERM soon: exit within this


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(scope="module")
def tiny_toml(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


@pytest.fixture(scope="module")
def reference(tiny_toml, tmp_path_factory):
    """The uninterrupted run, in-process: (run_dir, stats, final parameters)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    flags = {**FLAGS, "common.run_dir": str(run_dir)}
    config, _ = config_lib.load_config(config_file=str(tiny_toml), env={}, flags=flags)
    stats = loop.run(config, out=io.StringIO(), progress=False)
    assert stats.iteration == ITERATIONS
    return run_dir, stats, load.load_model(run_dir).params


def _cli_flags(flags: dict) -> list[str]:
    return [part for key, value in flags.items() for part in (f"--{key}", str(value))]


def _finish(process: subprocess.Popen) -> str:
    """Waits for `process` (killing it after TIMEOUT_S); its output."""
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"training still running after {TIMEOUT_S} s:\n{output}")
    return output


def _run(toml, run_dir, cwd, flags=FLAGS, fault=None) -> tuple[int, str]:
    """The training command in a subprocess, to its end: (exit status, output)."""
    process = start_training(toml, run_dir, cwd, *_cli_flags(flags), fault=fault)
    output = _finish(process)
    return process.returncode, output


def _wait_until_saved(process: subprocess.Popen, run_dir: pathlib.Path, iteration: int):
    """Polls until iteration `iteration` is saved: its checkpoint sealed (checksums written) and
    stats.json naming it."""
    def saved() -> bool:
        sealed = run_dir / "checkpoints" / str(iteration) / checkpoint_lib.CHECKSUM_FILE
        if not sealed.exists():
            return False
        try:
            return stats_lib.read_stats(layout.stats_path(run_dir)).iteration >= iteration
        except stats_lib.StatsError:  # not written yet
            return False

    deadline = time.monotonic() + TIMEOUT_S
    while not saved():
        if process.poll() is not None:
            pytest.fail(f"training exited ({process.returncode}) before saving iteration "
                        f"{iteration}:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"iteration {iteration} not saved after {TIMEOUT_S} s")
        time.sleep(0.005)


def _printed_iterations(output: str) -> list[int]:
    """The iterations whose summary line ("iter N/16 | ...") is in `output`."""
    return [int(n) for n in re.findall(rf"^iter (\d+)/{ITERATIONS} ", output, re.MULTILINE)]


def _resumed_after(output: str) -> int:
    """N of the "Resuming <run dir> after iteration N" line; 0 when the run started afresh."""
    found = re.findall(r"^Resuming \S+ after iteration (\d+) ", output, re.MULTILINE)
    assert len(found) <= 1, output
    return int(found[0]) if found else 0


def _checkpoints(run_dir) -> list[int]:
    with checkpoint_lib.Checkpoints(layout.checkpoints_dir(run_dir), max_to_keep=3) as saved:
        return saved.iterations()


def _losses(stats) -> list[tuple]:
    return [(p.step, p.total_loss, p.policy_loss, p.value_loss, p.replay_size)
            for p in stats.history]


def _assert_complete_like(run_dir, reference) -> stats_lib.Stats:
    """The run in `run_dir` is complete and equals the reference run: every iteration once in
    stats.json, with the same losses, the same counters and the same final parameters."""
    _, reference_stats, reference_params = reference
    stats = stats_lib.read_stats(layout.stats_path(run_dir))
    assert [p.iteration for p in stats.history] == list(range(1, ITERATIONS + 1))
    assert _losses(stats) == _losses(reference_stats)
    assert stats.iteration == stats.last_checkpoint == ITERATIONS
    # Counters come from the checkpoint: an iteration redone after a fault counts once.
    assert stats.positions_generated == ITERATIONS * POSITIONS
    assert stats.samples_seen == reference_stats.samples_seen
    assert _checkpoints(run_dir)[-1] == ITERATIONS
    assert not list(layout.checkpoints_dir(run_dir).glob("*tmp*"))  # no half-written save left
    assert trees_equal(load.load_model(run_dir).params, reference_params)
    return stats


def _copy(reference, tmp_path) -> pathlib.Path:
    run_dir = tmp_path / "run"
    shutil.copytree(reference[0], run_dir)
    return run_dir


def _keep_checkpoints_up_to(run_dir, iteration) -> None:
    """Deletes the checkpoints after `iteration`, as if the run had stopped there."""
    for later in _checkpoints(run_dir):
        if later > iteration:
            shutil.rmtree(layout.checkpoints_dir(run_dir) / str(later))


def _one_line_of(output: str, start: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(start)]
    assert len(lines) == 1, output
    return lines[0]


# ---------------------------------------------------------------------------------------------
# kill -9 at each fault point


@pytest.mark.parametrize("point", faults.POINTS)
def test_kill_at_a_fault_point_loses_nothing(point, tiny_toml, reference, tmp_path):
    if point == "export":
        run_dir, started_after = _copy(reference, tmp_path), EXPORT_RESUMES_AFTER
        _keep_checkpoints_up_to(run_dir, started_after)
        flags = {**FLAGS, **EXPORT_FLAGS}
    else:
        run_dir, started_after, flags = tmp_path / "run", 0, FLAGS
    killed_at = started_after + 1 if point == "export" else KILLED_AT
    status, killed = _run(tiny_toml, run_dir, tmp_path, flags, fault=f"{point}:{killed_at}")
    assert f"fault point {point}:{killed_at} reached" in killed, killed
    assert status == -signal.SIGKILL, killed
    assert _resumed_after(killed) == started_after
    printed = _printed_iterations(killed)
    assert printed == list(range(started_after + 1, started_after + 1 + len(printed)))
    last_printed = printed[-1] if printed else started_after

    status, resumed = _run(tiny_toml, run_dir, tmp_path, flags)  # the same command again
    assert status == 0, resumed
    assert "Traceback" not in resumed and "Warning" not in resumed, resumed
    after = _resumed_after(resumed)
    print(f"{point}:{killed_at}: summary lines up to {last_printed}, resumed after {after}")
    if point == "stats_write":
        # Killed after the checkpoint was committed and sealed, before its stats and line.
        assert after == killed_at == last_printed + 1, (killed, resumed)
    elif after == last_printed + 1:
        # Killed after orbax committed the checkpoint in flight, before the loop learnt it:
        # it is used although its line was never printed (unsealed, so used unchecked).
        assert f"(iteration {after}) has no {checkpoint_lib.CHECKSUM_FILE}" in resumed, resumed
    else:
        assert after == last_printed, (killed, resumed)
    assert _printed_iterations(resumed) == list(range(after + 1, ITERATIONS + 1))
    _assert_complete_like(run_dir, reference)
    if point == "export":  # the export killed is done again: the final network is exported
        manifest = export.read_manifest(layout.model_dir(run_dir, "tictactoe"))
        assert manifest["iteration"] == ITERATIONS


# ---------------------------------------------------------------------------------------------
# SIGINT and SIGTERM


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_drops_the_iteration_in_progress_and_exits(stop, tiny_toml, reference,
                                                                  tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(tiny_toml, run_dir, tmp_path, *_cli_flags(FLAGS))
    try:
        _wait_until_saved(process, run_dir, 2)
        sent = time.monotonic()
        process.send_signal(stop)
        process.wait(timeout=TIMEOUT_S)
        exit_s = time.monotonic() - sent
    finally:
        output = _finish(process)
    print(f"{stop.name}: exited {exit_s:.2f} s after the signal")
    assert process.returncode == 0, output
    assert "Traceback" not in output, output
    stopped = _one_line_of(output, f"Stopped by {stop.name}")
    held = (re.fullmatch(rf"Stopped by {stop.name}: iteration (\d+) dropped, \S+ holds "
                         r"iteration (\d+); rerun the same command to continue\.", stopped)
            or re.fullmatch(rf"Stopped by {stop.name} after iteration ()(\d+), saved in \S+; "
                            r"rerun the same command to continue\.", stopped))
    assert held, stopped
    saved = int(held.group(2))
    assert 2 <= saved < ITERATIONS, "the run ended before the signal"
    if held.group(1):
        assert int(held.group(1)) == saved + 1
    if stop == signal.SIGTERM:
        assert exit_s < TERM_EXIT_S, f"{exit_s:.1f} s from SIGTERM to exit"
    # Nothing half-saved: stats.json and the summary lines stop at the newest checkpoint.
    stats = stats_lib.read_stats(layout.stats_path(run_dir))
    assert _checkpoints(run_dir)[-1] == stats.iteration == stats.last_checkpoint == saved
    assert [p.iteration for p in stats.history] == list(range(1, saved + 1))
    assert _printed_iterations(output)[-1] == saved
    sealed = layout.checkpoints_dir(run_dir) / str(saved) / checkpoint_lib.CHECKSUM_FILE
    assert sealed.exists()

    status, resumed = _run(tiny_toml, run_dir, tmp_path)
    assert status == 0, resumed
    assert _resumed_after(resumed) == saved
    _assert_complete_like(run_dir, reference)


def test_a_second_ctrl_c_during_a_save_quits_at_once_in_one_line(tiny_toml, reference, tmp_path,
                                                                 run_cli):
    run_dir = tmp_path / "run"
    # Both Ctrl-Cs come right after iteration KILLED_AT's save starts: it is still being written.
    status, output = _run(tiny_toml, run_dir, tmp_path,
                          fault=f"checkpoint_save:{KILLED_AT}:SIGINT,SIGINT")
    reached = f"fault point checkpoint_save:{KILLED_AT} reached"
    assert reached in output, output
    assert status == loop.INTERRUPTED_STATUS, output
    assert output.split(reached, 1)[1].strip().splitlines() == [
        "SIGINT: stopping; the iteration in progress is dropped (Ctrl-C again to quit at once)",
        "SIGINT again: quit at once; rerun the same command to continue after the last "
        "iteration saved"], output

    # The save cut short is either an orbax temporary folder, ignored, or committed but not
    # sealed, used unchecked (with a note): never a damaged checkpoint.
    resumed = _rerun(run_cli, tiny_toml, run_dir)
    assert _resumed_after(resumed) in (KILLED_AT - 1, KILLED_AT), resumed
    assert "Warning" not in resumed, resumed
    _assert_complete_like(run_dir, reference)


# ---------------------------------------------------------------------------------------------
# Damaged checkpoints and stats.json (copies of the reference run, resumed in-process)


def _rerun(run_cli, tiny_toml, run_dir, flags=FLAGS) -> str:
    """The training command in-process (no second JAX start-up); its output."""
    status, out, err = run_cli("train", "--config", str(tiny_toml), "--run-dir", str(run_dir),
                               "--no-progress", *_cli_flags(flags))
    assert status == 0, err
    assert "Traceback" not in err, err
    return out + err


def _largest_data_file(run_dir, iteration) -> pathlib.Path:
    """The biggest array file of checkpoint `iteration` (the replay buffer's, mostly)."""
    folder = pathlib.Path(layout.checkpoints_dir(run_dir)) / str(iteration) / "state"
    return max((path for path in folder.rglob("*") if path.is_file()
                and "/d/" in path.as_posix()), key=lambda path: path.stat().st_size)


def _flip_bytes(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def _truncate(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", [_flip_bytes, _truncate], ids=["flipped", "truncated"])
def test_a_damaged_newest_checkpoint_is_set_aside(damage, tiny_toml, reference, tmp_path,
                                                  run_cli):
    run_dir = _copy(reference, tmp_path)
    damage(_largest_data_file(run_dir, ITERATIONS))

    output = _rerun(run_cli, tiny_toml, run_dir)
    set_aside = layout.checkpoints_dir(run_dir) / checkpoint_lib.SET_ASIDE_DIR / str(ITERATIONS)
    warning = _one_line_of(output, "Warning")
    assert warning.startswith("Warning: checkpoint in "), warning
    assert f"(iteration {ITERATIONS}) is damaged" in warning and str(set_aside) in warning
    assert set_aside.is_dir()  # kept, not deleted
    assert _resumed_after(output) == ITERATIONS - 1
    assert _printed_iterations(output) == [ITERATIONS]
    _assert_complete_like(run_dir, reference)


def _truncate_stats(path: pathlib.Path) -> None:
    path.write_text(path.read_text()[:200])


@pytest.mark.parametrize("damage", [_truncate_stats, pathlib.Path.unlink],
                         ids=["truncated", "missing"])
def test_stats_json_is_rewritten_from_the_checkpoint(damage, tiny_toml, reference, tmp_path,
                                                     run_cli):
    run_dir = _copy(reference, tmp_path)
    resume_at = ITERATIONS - 2
    _keep_checkpoints_up_to(run_dir, resume_at)
    damage(layout.stats_path(run_dir))

    output = _rerun(run_cli, tiny_toml, run_dir)
    warning = _one_line_of(output, "Warning")
    assert warning.startswith(f"Warning: {layout.stats_path(run_dir)} is "), warning
    assert warning.endswith(f": written again from the checkpoint of iteration {resume_at}")
    assert "delete" not in warning and "copy" not in warning, warning  # no fix to apply
    assert _resumed_after(output) == resume_at
    stats = _assert_complete_like(run_dir, reference)
    assert (stats.run_id, stats.created) == (reference[1].run_id, reference[1].created)


def _read_only(path, stats):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))


def test_a_stats_json_that_cannot_be_written_again_stops_in_one_line(
        tiny_toml, reference, tmp_path, run_cli, monkeypatch):
    run_dir = _copy(reference, tmp_path)
    resume_at = ITERATIONS - 2
    _keep_checkpoints_up_to(run_dir, resume_at)
    path = layout.stats_path(run_dir)
    _truncate_stats(path)
    damaged = path.read_bytes()

    with monkeypatch.context() as patch:  # a read-only run directory
        patch.setattr(stats_lib, "write_stats", _read_only)
        status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir",
                                 str(run_dir), "--no-progress", *_cli_flags(FLAGS))
    assert status == 2, err
    assert "Traceback" not in err, err
    line = _one_line_of(err, "cartridge-jax train: error:")
    assert f"cannot write {path} (Read-only file system); the checkpoint of iteration " \
        f"{resume_at} and the previous stats.json are intact" in line, line
    assert path.read_bytes() == damaged
    assert _checkpoints(run_dir)[-1] == resume_at

    _rerun(run_cli, tiny_toml, run_dir)  # writable again: the same command
    _assert_complete_like(run_dir, reference)


def _newer_schema(path: pathlib.Path) -> str:
    data = json.loads(path.read_text())
    data["schema_version"] = stats_lib.SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    return f"has schema_version {stats_lib.SCHEMA_VERSION + 1}"


def _unreadable(path: pathlib.Path) -> str:
    path.unlink()  # a folder where the file should be: unreadable even for root
    path.mkdir()
    return f"cannot read {path}"


@pytest.mark.parametrize("make", [_newer_schema, _unreadable], ids=["newer-schema", "unreadable"])
def test_a_stats_json_that_is_not_ours_to_replace_stops_in_one_line(make, tiny_toml, reference,
                                                                    tmp_path, run_cli):
    run_dir = _copy(reference, tmp_path)
    resume_at = ITERATIONS - 2
    _keep_checkpoints_up_to(run_dir, resume_at)
    path = layout.stats_path(run_dir)
    expected = make(path)
    before = path.read_bytes() if path.is_file() else None

    status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir", str(run_dir),
                             "--no-progress", *_cli_flags(FLAGS))
    assert status == 2, err
    assert "Traceback" not in err, err
    assert expected in _one_line_of(err, "cartridge-jax train: error:")
    assert (path.read_bytes() if path.is_file() else None) == before  # not overwritten
    assert _checkpoints(run_dir)[-1] == resume_at  # nothing trained, nothing lost


@pytest.mark.parametrize("left", ["lock", "stats"])
def test_a_rerun_without_a_checkpoint_says_it_starts_over(left, tiny_toml, reference, tmp_path,
                                                          run_cli):
    if left == "lock":  # killed before its first checkpoint
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        (run_dir / "train.lock").write_text("1 on elsewhere\n")
    else:  # the checkpoints deleted, or all set aside as damaged
        run_dir = _copy(reference, tmp_path)
        shutil.rmtree(layout.checkpoints_dir(run_dir))
    old_stats = layout.stats_path(reference[0]).read_bytes()

    output = _rerun(run_cli, tiny_toml, run_dir)
    assert _resumed_after(output) == 0
    if left == "lock":
        assert _one_line_of(output, "No checkpoint") == \
            f"No checkpoint in {run_dir}: starting a new run"
        assert "Warning" not in output, output
    else:
        kept = run_dir / f"stats.json{stats_lib.OLD_SUFFIX}"
        assert _one_line_of(output, "Warning") == (
            f"Warning: {run_dir} has a stats.json but no checkpoint to resume from: starting a "
            f"new run; the old stats.json is now {kept}")
        assert kept.read_bytes() == old_stats  # the old history, out of the new run's way
    stats = _assert_complete_like(run_dir, reference)
    assert stats.run_id != reference[1].run_id


# ---------------------------------------------------------------------------------------------
# A second trainer, a full disk


def test_a_second_trainer_is_refused_and_the_first_goes_on(tiny_toml, reference, tmp_path,
                                                           run_cli):
    run_dir = tmp_path / "run"
    first = start_training(tiny_toml, run_dir, tmp_path, *_cli_flags(FLAGS))
    try:
        _wait_until_saved(first, run_dir, 1)
        first.send_signal(signal.SIGSTOP)  # holds the lock, and the run directory still
        try:
            stats_before = layout.stats_path(run_dir).read_bytes()
            checkpoints_before = _checkpoints(run_dir)
            status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir",
                                     str(run_dir), "--no-progress", *_cli_flags(FLAGS))
            assert layout.stats_path(run_dir).read_bytes() == stats_before
            assert _checkpoints(run_dir) == checkpoints_before
        finally:
            first.send_signal(signal.SIGCONT)
        output = _finish(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert status == 2, err
    assert "Traceback" not in err, err
    line = _one_line_of(err, "cartridge-jax train: error:")
    assert f"another trainer (pid {first.pid} on " in line and str(run_dir) in line, line
    assert first.returncode == 0, output
    assert _printed_iterations(output) == list(range(1, ITERATIONS + 1))
    _assert_complete_like(run_dir, reference)


def _no_space(path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


@pytest.mark.parametrize("where", ["stats_write", "checkpoint_save", "snapshot"])
def test_a_full_disk_stops_in_one_line_and_keeps_what_was_saved(where, tiny_toml, reference,
                                                                 tmp_path, run_cli, monkeypatch):
    run_dir = tmp_path / "run"
    full_at = 2  # the disk fills up while iteration 2 is saved
    # A snapshot every iteration (parameters only: the run's results are the same).
    flags = {**FLAGS, "training.snapshot_interval": 1} if where == "snapshot" else FLAGS
    write_stats, save = stats_lib.write_stats, ocp.CheckpointManager.save
    write_snapshot = checkpoint_lib.atomic_write_bytes

    def full_stats(path, stats):
        if stats.iteration == full_at:
            raise _no_space(path)
        write_stats(path, stats)

    def full_checkpoints(manager, iteration, *args, **kwargs):
        if iteration == full_at:
            raise _no_space(manager.directory / str(iteration))
        return save(manager, iteration, *args, **kwargs)

    def full_snapshots(path, data):
        if path == checkpoint_lib.snapshot_path(run_dir, full_at):
            raise _no_space(path)
        write_snapshot(path, data)

    with monkeypatch.context() as patch:
        if where == "stats_write":
            patch.setattr(stats_lib, "write_stats", full_stats)
        elif where == "checkpoint_save":
            patch.setattr(ocp.CheckpointManager, "save", full_checkpoints)
        else:
            patch.setattr(checkpoint_lib, "atomic_write_bytes", full_snapshots)
        status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir",
                                 str(run_dir), "--no-progress", *_cli_flags(flags))
    # Like every problem of the environment (a second trainer, a damaged checkpoint): exit 2.
    assert status == 2, err
    assert "Traceback" not in err, err
    line = _one_line_of(err, "cartridge-jax train: error:")
    assert "No space left on device" in line, line
    if where == "stats_write":
        assert f"cannot write {layout.stats_path(run_dir)} (No space left on device); the " \
            f"checkpoint of iteration {full_at} and the previous stats.json are intact" in line
        saved_iterations = list(range(1, full_at + 1))
    elif where == "checkpoint_save":
        assert f"saving iteration {full_at} in " in line, line
        assert "(the previous checkpoints are intact)" in line, line
        saved_iterations = list(range(1, full_at))
    else:  # snapshots come before the checkpoint of their iteration
        assert f"cannot write snapshot {checkpoint_lib.snapshot_path(run_dir, full_at)}: " \
            in line, line
        saved_iterations = list(range(1, full_at))
    # The previous stats.json and every checkpoint saved are intact.
    assert stats_lib.read_stats(layout.stats_path(run_dir)).iteration == full_at - 1
    with checkpoint_lib.Checkpoints(layout.checkpoints_dir(run_dir), max_to_keep=3) as saved:
        assert saved.iterations() == saved_iterations
        assert all(saved.verify(iteration) for iteration in saved_iterations)

    output = _rerun(run_cli, tiny_toml, run_dir, flags)  # space freed: the same command again
    assert _resumed_after(output) == saved_iterations[-1]
    _assert_complete_like(run_dir, reference)


def test_a_full_disk_during_an_export_stops_in_one_line(tiny_toml, reference, tmp_path,
                                                        run_cli, monkeypatch):
    run_dir = tmp_path / "run"
    flags = {**FLAGS, **EXPORT_FLAGS}
    folder = layout.model_dir(run_dir, "tictactoe")

    def full_disk(*args, **kwargs):
        raise _no_space(folder / "model.onnx")

    with monkeypatch.context() as patch:
        patch.setattr(export, "export_model", full_disk)
        status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir",
                                 str(run_dir), "--no-progress", *_cli_flags(flags))
    assert status == 2, err
    assert "Traceback" not in err, err
    line = _one_line_of(err, "cartridge-jax train: error:")
    # The first export (iteration 1) fails; its error stops the run at the next export.
    assert f"cannot export iteration 1 to {folder} (No space left on device); the checkpoints "\
        "are intact" in line, line
    stats = stats_lib.read_stats(layout.stats_path(run_dir))
    with checkpoint_lib.Checkpoints(layout.checkpoints_dir(run_dir), max_to_keep=3) as saved:
        assert saved.iterations()[-1] == stats.iteration
        assert all(saved.verify(iteration) for iteration in saved.iterations())

    _rerun(run_cli, tiny_toml, run_dir, flags)  # space freed: the same command again
    _assert_complete_like(run_dir, reference)
    assert export.read_manifest(folder)["iteration"] == ITERATIONS
