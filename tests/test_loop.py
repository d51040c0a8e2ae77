"""The training loop end to end on a tiny TicTacToe configuration: outputs, resume, kill, Ctrl-C,
a NaN loss, refused checkpoints and determinism.

Compilation dominates the time, so every test trains the same tiny configuration (`TINY_TOML`)
and reads or copies the outputs of one shared 2-iteration run (`base_run`) where it can; only
`training.iterations` and the seed vary. Runs happen in-process except where a process must be
killed or interrupted.
"""

import io
import json
import pathlib
import re
import shutil
import signal
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import CACHE_DIR, TINY_TOML, start_training, trees_equal

from cartridge_jax import config as config_lib
from cartridge_jax.config.layering import FAULT_ENV
from cartridge_jax.evaluation import agents, position_sets
from cartridge_jax.evaluation.evaluator import Evaluator
from cartridge_jax.model import load
from cartridge_jax.run import checkpoint as checkpoint_lib
from cartridge_jax.run import stats as stats_lib
from cartridge_jax.run.checkpoint import Checkpoints
from cartridge_jax.training import learner, loop
from cartridge_jax.training.trainer import RunState, Trainer

STEPS = 4  # training.steps_per_iteration
POSITIONS = 8 * 8  # selfplay.games x moves_per_iteration: positions of one whole iteration
EVAL_GAMES = 4
OPPONENTS = {"random", "greedy", "best"}  # the configured opponents and the best model
SUBPROCESS_ITERATIONS = 8  # enough that a signal sent after iteration 1 lands before the end
SUBPROCESS_TIMEOUT_S = 300


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(scope="module")
def tiny_toml(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("config") / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


def _config(toml, run_dir, *, iterations=2, seed=0, **flags) -> config_lib.Config:
    flags = {"common.run_dir": str(run_dir), "training.iterations": iterations,
             "common.seed": seed, **flags}
    config, _ = config_lib.load_config(config_file=str(toml), env={}, flags=flags)
    return config


def _train(toml, run_dir, **kwargs) -> tuple[stats_lib.Stats, str]:
    """Trains in-process; returns (the stats run returned, what it printed)."""
    out = io.StringIO()
    stats = loop.run(_config(toml, run_dir, **kwargs), out=out, progress=False)
    return stats, out.getvalue()


def _stats(run_dir) -> stats_lib.Stats:
    return stats_lib.read_stats(pathlib.Path(run_dir) / "stats.json")


def _checkpoint_iterations(run_dir) -> list[int]:
    with Checkpoints(pathlib.Path(run_dir) / "checkpoints", max_to_keep=3) as checkpoints:
        return checkpoints.iterations()


def _restore(toml, run_dir) -> tuple[RunState, dict]:
    """The latest checkpoint of `run_dir`, restored the way the loop does it."""
    trainer = Trainer(_config(toml, run_dir))
    template = trainer.initial_state()
    with Checkpoints(pathlib.Path(run_dir) / "checkpoints", max_to_keep=3) as checkpoints:
        return checkpoints.restore(
            template, expected_meta=trainer.identity(template.train_state.params))


def _losses(stats) -> list[tuple]:
    return [(p.total_loss, p.policy_loss, p.value_loss) for p in stats.history]


def _eval_results(stats) -> list[tuple]:
    return [(e.iteration, e.opponent, e.wins, e.draws, e.losses) for e in stats.eval_history]


def _check_consecutive(stats, iterations: int) -> None:
    """stats.json shows iterations 1..`iterations` exactly once each, all evaluated."""
    assert stats.iteration == iterations
    assert stats.step == iterations * STEPS
    assert [p.iteration for p in stats.history] == list(range(1, iterations + 1))
    assert [p.step for p in stats.history] == [i * STEPS for i in range(1, iterations + 1)]
    evaluated = [(e.iteration, e.opponent) for e in stats.eval_history]
    assert sorted(evaluated) == sorted(
        (i, name) for i in range(1, iterations + 1) for name in OPPONENTS)
    # Counters come from the checkpoint: an iteration redone after a kill is not counted twice.
    assert stats.positions_generated == iterations * POSITIONS


@pytest.fixture(scope="module")
def base_run(tiny_toml, tmp_path_factory):
    """One fresh 2-iteration run, shared: (run_dir, returned stats, printed output).

    Tests that train further or might write copy the directory first.
    """
    run_dir = tmp_path_factory.mktemp("base") / "run"
    stats, output = _train(tiny_toml, run_dir)
    return run_dir, stats, output


def _copy_run(base_run, tmp_path, name="run") -> pathlib.Path:
    destination = tmp_path / name
    shutil.copytree(base_run[0], destination)
    return destination


def _error_line(err: str) -> str:
    """The one "cartridge-jax train: error: ..." line of `err` (other output may surround it)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("cartridge-jax train: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _wait_for_iteration_1(process: subprocess.Popen, run_dir: pathlib.Path) -> None:
    """Polls until iteration 1 is saved (its checkpoint and stats.json are on disk)."""
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
    while not ((run_dir / "checkpoints" / "1").is_dir() and (run_dir / "stats.json").exists()):
        if process.poll() is not None:
            pytest.fail(f"training exited ({process.returncode}) before saving iteration 1:\n"
                        f"{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no checkpoint of iteration 1 after {SUBPROCESS_TIMEOUT_S} s")
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------------
# A run, and resuming it


def test_tiny_run_writes_checkpoint_and_stats(base_run, tiny_toml):
    run_dir, returned, output = base_run
    stats = _stats(run_dir)
    assert stats.model_dump(mode="json") == returned.model_dump(mode="json")
    assert stats.game == "tictactoe"
    assert stats.config["selfplay"]["games"] == 8 and stats.config["common"]["preset"] == "none"
    _check_consecutive(stats, 2)
    assert stats.last_checkpoint == 2
    assert stats.replay_capacity == 512 and 0 < stats.replay_size <= 512
    assert stats.losses.total is not None and np.isfinite(stats.losses.total)
    for entry in stats.eval_history:
        assert entry.games == EVAL_GAMES
        assert entry.wins + entry.draws + entry.losses == EVAL_GAMES
    assert set(stats.last_eval) == OPPONENTS
    assert "iter 1/2" in output and "iter 2/2" in output

    assert _checkpoint_iterations(run_dir) == [1, 2]
    state, meta = _restore(tiny_toml, run_dir)
    assert int(state.train_state.step) == 2 * STEPS
    assert meta["iteration"] == 2 and meta["game"] == "tictactoe"
    assert meta["counters"]["positions_generated"] == 2 * POSITIONS


def test_returned_stats_equal_the_file(base_run):
    run_dir, returned, _ = base_run
    assert _stats(run_dir) == returned


def test_resume_continues_at_the_next_iteration(base_run, tiny_toml, tmp_path):
    run_dir = _copy_run(base_run, tmp_path)
    base_stats = base_run[1]

    stats, output = _train(tiny_toml, run_dir, iterations=3)
    assert f"Resuming {run_dir} after iteration 2 (step {2 * STEPS})" in output
    assert "iter 3/3" in output and "iter 1/" not in output and "iter 2/" not in output
    assert stats == _stats(run_dir)
    _check_consecutive(stats, 3)
    assert stats.history[:2] == base_stats.history  # the old points are kept as they were
    assert (stats.run_id, stats.created) == (base_stats.run_id, base_stats.created)
    assert stats.last_checkpoint == 3
    assert _checkpoint_iterations(run_dir) == [1, 2, 3]
    state, _ = _restore(tiny_toml, run_dir)
    assert int(state.train_state.step) == 3 * STEPS

    saved = (run_dir / "stats.json").read_bytes()
    again, output = _train(tiny_toml, run_dir, iterations=3)
    assert "already has 3 iterations" in output and "iter " not in output
    assert again == stats
    assert (run_dir / "stats.json").read_bytes() == saved
    assert _checkpoint_iterations(run_dir) == [1, 2, 3]


def test_a_time_budget_sets_the_learning_rate_and_ends_the_run(base_run, tiny_toml, tmp_path):
    """Resumed under a budget of twice the clock spent, iteration 3 trains at the schedule's
    rate for half of the run, far below its step's rate in 1000 iterations; the iteration that
    spends the budget is the last."""
    run_dir = _copy_run(base_run, tmp_path)
    spent = base_run[1].history[-1].clock_s
    budget = 2 * spent
    config = _config(tiny_toml, run_dir, iterations=1000,
                     **{"training.time_budget_s": budget, "training.warmup_steps": 4})
    stats = loop.run(config, out=io.StringIO(), progress=False)
    third = stats.history[2]
    assert third.iteration == 3
    last_step = 3 * STEPS - 1
    assert np.isclose(third.learning_rate, float(learner.learning_rate(config, last_step, 0.5)))
    assert third.learning_rate < 0.8 * float(learner.learning_rate(config, last_step))
    assert stats.history[-1].clock_s >= budget > stats.history[-2].clock_s


def test_death_between_checkpoint_and_stats_loses_no_iteration(
        base_run, tiny_toml, tmp_path, monkeypatch):
    run_dir = _copy_run(base_run, tmp_path)

    class Killed(BaseException):
        pass

    def killed_while_writing(path, stats):
        raise Killed

    with monkeypatch.context() as patch:  # the process dies at iteration 3's stats.json write
        patch.setattr(stats_lib, "write_stats", killed_while_writing)
        with pytest.raises(Killed):
            _train(tiny_toml, run_dir, iterations=3)

    _train(tiny_toml, run_dir, iterations=3)  # rerun the same command
    _check_consecutive(_stats(run_dir), 3)
    assert _checkpoint_iterations(run_dir)[-1] == 3


# ---------------------------------------------------------------------------------------------
# The best model and snapshots


def _snapshot_iterations(run_dir) -> list[int]:
    return list(checkpoint_lib.snapshots(run_dir))


def test_base_run_keeps_snapshots_of_its_promotions_only(base_run):
    run_dir, stats, _ = base_run
    promoted = [e.iteration for e in stats.eval_history if e.became_new_best]
    assert all(e.opponent == "best" for e in stats.eval_history if e.became_new_best)
    for entry in stats.eval_history:
        if entry.opponent == "best":
            assert entry.became_new_best == (entry.score >= 0.55)
    assert _snapshot_iterations(run_dir) == promoted  # snapshot_interval 10: none periodic
    assert stats.best_model == (stats_lib.BestModel(iteration=promoted[-1],
                                                    step=promoted[-1] * STEPS)
                                if promoted else None)


@pytest.fixture(scope="module")
def promoting_run(tiny_toml, tmp_path_factory):
    """A 2-iteration run where every evaluation promotes (win_threshold 0), resumed to 3."""
    run_dir = tmp_path_factory.mktemp("promoting") / "run"
    flags = {"evaluation.win_threshold": 0.0, "training.snapshot_interval": 0}
    _train(tiny_toml, run_dir, **flags)
    first = _stats(run_dir)
    params_2 = _restore(tiny_toml, run_dir)[0].train_state.params
    best_played = []  # the best network's parameters each match of the resumed run was given
    match = Evaluator.match

    def spy(evaluator, params, best_params, index, key):
        best_played.append(best_params)
        return match(evaluator, params, best_params, index, key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Evaluator, "match", spy)
        _, resumed_output = _train(tiny_toml, run_dir, iterations=3, **flags)
    return run_dir, first, params_2, resumed_output, best_played


def test_every_evaluation_promotes_at_threshold_zero(promoting_run):
    run_dir, first, params_2, output, _ = promoting_run
    assert [(e.iteration, e.became_new_best) for e in first.eval_history
            if e.opponent == "best"] == [(1, True), (2, True)]
    assert not any(e.became_new_best for e in first.eval_history if e.opponent != "best")
    assert first.best_model == stats_lib.BestModel(iteration=2, step=2 * STEPS)
    # The best network is on disk as its snapshot: the checkpoint's parameters.
    assert trees_equal(checkpoint_lib.load_snapshot(checkpoint_lib.snapshot_path(run_dir, 2),
                                                    params_2), params_2)
    resumed = _stats(run_dir)
    assert "Warning" not in output and "new best" in output
    assert resumed.best_model == stats_lib.BestModel(iteration=3, step=3 * STEPS)
    assert _snapshot_iterations(run_dir) == [1, 2, 3]


def test_resumed_run_plays_the_best_network_from_its_snapshot(promoting_run):
    _, _, params_2, _, best_played = promoting_run
    # Iteration 3 after resuming: every match gets iteration 2's network as the best.
    assert best_played and all(trees_equal(best, params_2) for best in best_played)


def test_periodic_snapshots(tiny_toml, tmp_path):
    run_dir = tmp_path / "run"
    _train(tiny_toml, run_dir, iterations=2, **{"training.snapshot_interval": 2,
                                                 "evaluation.interval": 0})
    assert _snapshot_iterations(run_dir) == [2]
    stats = _stats(run_dir)
    assert stats.eval_history == [] and stats.best_model is None


def test_benchmarks_are_recorded(tiny_toml, tmp_path):
    stats, output = _train(tiny_toml, tmp_path / "run", iterations=1,
                           **{"evaluation.benchmarks": '["exhaustive"]'})
    point, raw = stats.benchmarks
    assert (point.iteration, point.name, point.metric) == (1, "tictactoe/exhaustive",
                                                            "optimal_rate")
    assert 0 < point.value < 1
    # On the training clock (self-play + training, not the evaluation) and positions.
    last = stats.history[-1]
    assert point.clock_s == last.clock_s and 0 < last.clock_s < last.wall_time_s
    assert point.positions_generated == last.positions_generated == POSITIONS
    assert f"exhaustive optimal_rate {point.value:.3f}" in output
    # The raw network's measure too: its most likely move in every position, recomputed here.
    assert (raw.iteration, raw.name, raw.metric) == (1, "tictactoe/exhaustive",
                                                      "raw_optimal_rate")
    model = load.load_model(tmp_path / "run")
    raw_network = agents.search_agent(model.game, model.network.apply, model.params, 0)
    expected = position_sets.tictactoe_exhaustive(raw_network, key=jax.random.key(0))
    assert raw.value == expected["optimal_rate"]


@pytest.mark.slow
def test_ladder_rates_the_snapshots(promoting_run, run_cli, tmp_path):
    run_dir = promoting_run[0]
    status, out, err = run_cli("ladder", "--game", "tictactoe", "--snapshots", str(run_dir),
                               "--opponents", "random", "--games", "4",
                               "--json-out", str(tmp_path / "ladder.json"))
    assert status == 0, err
    result = json.loads((tmp_path / "ladder.json").read_text())
    names = {player["name"] for player in result["players"]}
    assert names == {"random", "iter_1", "iter_2", "iter_3"}
    random = next(p for p in result["players"] if p["name"] == "random")
    assert random["elo"] == 0
    # Each snapshot against random, and against the next snapshot: 3 + 2 matches.
    assert len(result["matches"]) == 5
    assert all(m["wins"] + m["draws"] + m["losses"] == 4 for m in result["matches"])
    assert out.splitlines()[0].split() == ["player", "elo", "+-", "games", "score"]


def test_bad_opponent_stops_before_training(tiny_toml, tmp_path, run_cli):
    status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir",
                             str(tmp_path / "run"), "--evaluation.opponents",
                             '["./no/such/model"]', "--no-progress")
    assert status == 2
    assert "evaluation.opponents:" in _error_line(err)
    assert not (tmp_path / "run" / "checkpoints").exists()


# ---------------------------------------------------------------------------------------------
# Killed and interrupted processes


def test_killed_run_resumes_at_the_next_iteration(tiny_toml, tmp_path):
    run_dir = tmp_path / "run"
    iterations = SUBPROCESS_ITERATIONS
    process = start_training(tiny_toml, run_dir, tmp_path, "--iterations", str(iterations))
    try:
        _wait_for_iteration_1(process, run_dir)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -signal.SIGKILL, "training finished before it was killed"
    killed_after = _checkpoint_iterations(run_dir)[-1]
    assert 1 <= killed_after < iterations

    # Rerun to completion; in-process saves a second start-up of JAX (same code as the CLI).
    _, output = _train(tiny_toml, run_dir, iterations=iterations)
    assert f"Resuming {run_dir} after iteration {killed_after}" in output
    assert f"iter {killed_after + 1}/{iterations}" in output
    assert f"iter {killed_after}/" not in output
    stats = _stats(run_dir)
    _check_consecutive(stats, iterations)
    assert stats.last_checkpoint == iterations
    assert _checkpoint_iterations(run_dir)[-1] == iterations
    assert not list((run_dir / "checkpoints").glob("*tmp*"))  # no half-written save left


def test_ctrl_c_saves_and_exits_0(tiny_toml, tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(tiny_toml, run_dir, tmp_path, "--iterations",
                             str(SUBPROCESS_ITERATIONS))
    try:
        _wait_for_iteration_1(process, run_dir)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    # The iteration in progress is finished (the signal came after its last chunk) or dropped.
    stopped = (re.search(r"Stopped by SIGINT after iteration (\d+), saved in ", output)
               or re.search(r"Stopped by SIGINT: iteration \d+ dropped, \S+ holds iteration "
                            r"(\d+);", output))
    assert stopped, output
    saved = int(stopped.group(1))
    assert 1 <= saved < SUBPROCESS_ITERATIONS
    assert "Traceback" not in output
    stats = _stats(run_dir)
    assert _checkpoint_iterations(run_dir)[-1] == saved == stats.iteration
    assert stats.last_checkpoint == saved
    assert [p.iteration for p in stats.history] == list(range(1, saved + 1))


def test_a_second_ctrl_c_in_process_raises_keyboard_interrupt(tiny_toml, tmp_path, monkeypatch):
    """A caller in the same process (a notebook) keeps its process: a second Ctrl-C raises
    KeyboardInterrupt once the save in flight is done (the command line quits at once instead,
    tests/test_faults.py)."""
    run_dir = tmp_path / "run"
    monkeypatch.setenv(FAULT_ENV, "checkpoint_save:2:SIGINT,SIGINT")  # while iteration 2 saves
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        loop.run(_config(tiny_toml, run_dir, iterations=3), out=out, progress=False)
    assert "SIGINT: stopping; the iteration in progress is dropped" in out.getvalue()
    assert _checkpoint_iterations(run_dir) == [1, 2] and _stats(run_dir).iteration == 2
    assert (run_dir / "checkpoints" / "2" / checkpoint_lib.CHECKSUM_FILE).exists()  # sealed


# ---------------------------------------------------------------------------------------------
# Failures


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
        base_run, tiny_toml, tmp_path, monkeypatch, run_cli):
    run_dir = _copy_run(base_run, tmp_path)
    shutil.rmtree(run_dir / "checkpoints" / "2")  # as if only iteration 1 had run
    original = learner.loss_fn

    def nan_loss(*args):
        total, losses = original(*args)
        nan = total * jnp.nan
        return nan, learner.Losses(total=nan, policy=losses.policy, value=losses.value)

    # Patched before the run builds its Trainer: the train step is traced through the module.
    monkeypatch.setattr(learner, "loss_fn", nan_loss)
    with pytest.raises(loop.TrainingError) as error:
        _train(tiny_toml, run_dir, iterations=2)
    message = str(error.value)
    assert "nan" in message.lower() and "keeps iteration 1" in message
    assert "\n" not in message
    assert _checkpoint_iterations(run_dir) == [1]

    status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir", str(run_dir),
                             "--iterations", "2", "--no-progress")
    assert status == 1
    line = _error_line(err)
    assert "nan" in line.lower() and "iteration 1" in line
    assert _checkpoint_iterations(run_dir) == [1]


def test_nan_loss_in_the_first_iteration_says_nothing_was_saved(tiny_toml, tmp_path,
                                                                 monkeypatch):
    def nan_loss(*args):
        total, losses = original(*args)
        return total * jnp.nan, losses

    original = learner.loss_fn
    monkeypatch.setattr(learner, "loss_fn", nan_loss)
    with pytest.raises(loop.TrainingError) as error:
        _train(tiny_toml, tmp_path / "run", iterations=1)
    message = str(error.value)
    assert "(iteration 1); stopped without saving it, nothing was saved yet: lower " in message
    assert "iteration 0" not in message
    assert _checkpoint_iterations(tmp_path / "run") == []


@pytest.mark.parametrize("flags, needles", [
    (["--game", "connect4"], ["tictactoe", "connect4"]),
    (["--model.mlp_hidden", "[32]"], ["network", "MLP 16", "MLP 32"]),
], ids=["other-game", "other-network"])
def test_checkpoint_of_another_run_is_refused(base_run, tiny_toml, tmp_path, run_cli,
                                               flags, needles):
    run_dir = _copy_run(base_run, tmp_path)
    stats_before = (run_dir / "stats.json").read_bytes()
    status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir", str(run_dir),
                             "--iterations", "3", "--no-progress", *flags)
    assert status == 2
    line = _error_line(err)
    for needle in needles:
        assert needle in line, line
    assert _checkpoint_iterations(run_dir) == [1, 2]
    assert (run_dir / "stats.json").read_bytes() == stats_before


def test_a_float32_run_resumes_in_bfloat16(base_run, tiny_toml, tmp_path, run_cli):
    # The compute dtype is not part of a checkpoint's identity: parameters are float32 in both.
    run_dir = _copy_run(base_run, tmp_path)
    status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir", str(run_dir),
                             "--iterations", "3", "--no-progress", "--model.dtype", "bfloat16")
    assert status == 0, err
    assert _checkpoint_iterations(run_dir) == [1, 2, 3]


def test_cache_dir_variable_is_not_a_config_setting(base_run, tiny_toml, tmp_path, run_cli,
                                                     monkeypatch):
    run_dir = _copy_run(base_run, tmp_path)
    monkeypatch.setenv("CARTRIDGE_JAX_CACHE_DIR", str(CACHE_DIR))
    status, _, err = run_cli("train", "--config", str(tiny_toml), "--run-dir", str(run_dir),
                             "--iterations", "2", "--no-progress")
    assert status == 0, err


# ---------------------------------------------------------------------------------------------
# Determinism


def test_same_seed_same_run_other_seed_differs(base_run, tiny_toml, tmp_path):
    base_dir, base_stats, _ = base_run
    same, _ = _train(tiny_toml, tmp_path / "same", seed=0)
    other, _ = _train(tiny_toml, tmp_path / "other", seed=1)

    assert _losses(same) == _losses(base_stats)
    assert _eval_results(same) == _eval_results(base_stats)
    base_state, _ = _restore(tiny_toml, base_dir)
    same_state, _ = _restore(tiny_toml, tmp_path / "same")
    assert trees_equal(same_state, base_state)  # params, optimizer, replay, games, RNG

    other_state, _ = _restore(tiny_toml, tmp_path / "other")
    assert _losses(other) != _losses(base_stats)
    assert not trees_equal(other_state.train_state.params, base_state.train_state.params)
