"""stats.json: schema round trip, atomic writes, history thinning, NaN handling, errors."""

import json
import math
import pathlib
from types import SimpleNamespace

import numpy as np
import pytest

from cartridge_jax.run import stats as st

NOW = "2025-01-01T00:00:00+00:00"
DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "stats.md"


def _record(stats, iteration, **overrides):
    values = dict(
        step=iteration * 10,
        iteration=iteration,
        losses={"total": 2.0 / iteration, "policy": 1.5 / iteration, "value": 0.5 / iteration},
        learning_rate=1e-3,
        throughput={"positions_per_s": 1000.0, "games_per_s": 40.0, "train_steps_per_s": 5.0},
        replay_size=100 * iteration,
        samples_seen=iteration * 10 * 64,
        positions_generated=100 * iteration,
        games_played=4 * iteration,
        wall_time_s=2.5 * iteration,
        replay_capacity=10_000,
        now=NOW,
    )
    values.update(overrides)
    return st.record_iteration(stats, **values)


def _run(iterations=3):
    stats = st.new_stats("tictactoe", "run-1", {"training": {"batch_size": 64}}, now=NOW)
    for iteration in range(1, iterations + 1):
        stats = _record(stats, iteration)
    return stats


def _points(iterations):
    return [SimpleNamespace(iteration=i) for i in iterations]


def test_round_trip_keeps_every_field(tmp_path):
    stats = _run(3)
    stats = st.record_eval(
        stats,
        [
            st.eval_entry(step=30, iteration=3, opponent="random", wins=9, draws=1, losses=0,
                          timestamp=NOW),
            st.eval_entry(step=30, iteration=3, opponent="best", wins=6, draws=2, losses=2,
                          became_new_best=True, timestamp=NOW),
        ],
        now=NOW,
    )
    stats = st.record_benchmarks(
        stats,
        [st.BenchmarkPoint(step=30, iteration=3, name="connect4/Test_L1_R1",
                           metric="mistake_rate", value=0.25)],
        now=NOW,
    )
    path = tmp_path / "stats.json"
    st.write_stats(path, stats)
    assert st.read_stats(path) == stats
    data = json.loads(path.read_text())
    assert data["schema_version"] == st.SCHEMA_VERSION
    assert data["step"] == 30 and data["iteration"] == 3
    assert data["best_model"] == {"iteration": 3, "step": 30}
    assert set(data["last_eval"]) == {"random", "best"}
    assert [point["step"] for point in data["history"]] == [10, 20, 30]


def test_record_iteration_sets_current_values_and_returns_a_new_object():
    before = _run(1)
    after = _record(before, 2, last_checkpoint=2)
    assert before.iteration == 1 and len(before.history) == 1
    assert after.iteration == 2 and after.step == 20 and after.last_checkpoint == 2
    assert after.losses.total == pytest.approx(1.0)
    assert after.throughput.games_per_s == 40.0
    assert after.history[-1].replay_size == 200
    # None keeps the previous values
    assert _record(after, 3).last_checkpoint == 2
    assert _record(after, 3, replay_capacity=None).replay_capacity == 10_000


def test_record_iteration_accepts_numpy_scalars():
    stats = _record(_run(0), 1, losses={"total": np.float32(1.5), "policy": np.float64(1.0),
                                       "value": np.float32(0.5)}, learning_rate=np.float32(3e-4))
    assert stats.losses.total == 1.5 and isinstance(stats.losses.total, float)
    assert stats.learning_rate == pytest.approx(3e-4)


def test_resumed_iteration_drops_the_undone_timeline():
    stats = _run(5)
    stats = st.record_eval(stats, [st.eval_entry(step=40, iteration=4, opponent="random",
                                                 wins=1, draws=0, losses=0)])
    stats = _record(stats, 3)  # resumed from the checkpoint of iteration 2
    assert [p.iteration for p in stats.history] == [1, 2, 3]
    assert stats.eval_history == [] and stats.last_eval == {}


def test_resumed_iteration_takes_back_undone_promotions():
    stats = _run(5)
    for iteration in (2, 4):
        stats = st.record_eval(stats, [st.eval_entry(
            step=10 * iteration, iteration=iteration, opponent="best", wins=3, draws=0,
            losses=1, became_new_best=True)])
    assert stats.best_model == st.BestModel(iteration=4, step=40)
    stats = _record(stats, 4)  # resumed from the checkpoint of iteration 3
    assert stats.best_model == st.BestModel(iteration=2, step=20)
    stats = _record(stats, 2)  # resumed from the checkpoint of iteration 1
    assert stats.best_model is None


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "stats.json"
    st.write_stats(path, _run(1))
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]  # nothing to back up yet
    st.write_stats(path, _run(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json", "stats.json.prev"]
    assert st.read_stats(path).iteration == 2


def test_each_write_keeps_the_previous_file_as_prev(tmp_path):
    path = tmp_path / "stats.json"
    for iteration in (1, 2, 3):
        st.write_stats(path, _run(iteration))
        if iteration > 1:
            assert st.read_stats(st.backup_path(path)).iteration == iteration - 1
    assert st.backup_path(path) == tmp_path / "stats.json.prev"


def test_a_damaged_file_is_not_backed_up_over_the_good_backup(tmp_path):
    path = tmp_path / "stats.json"
    st.write_stats(path, _run(1))
    st.write_stats(path, _run(2))
    path.write_text('{"schema_version": 1, "ga')  # truncated, e.g. restored from a bad copy
    st.write_stats(path, _run(3))
    assert st.read_stats(path).iteration == 3
    assert st.read_stats(st.backup_path(path)).iteration == 1


def test_truncated_file_names_the_backup_and_the_fix(tmp_path):
    path = tmp_path / "stats.json"
    st.write_stats(path, _run(1))
    st.write_stats(path, _run(2))
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(st.StatsError) as caught:
        st.read_stats(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path} is not valid JSON")
    assert message.endswith(f"copy {path}.prev over it, or delete it to start a new history")
    # the backup is whole: following the advice recovers the run's history up to iteration 1
    st.backup_path(path).replace(path)
    assert st.read_stats(path) == _run(1)


def test_non_finite_numbers_become_null(tmp_path):
    stats = _record(_run(0), 1, losses={"total": math.nan, "policy": math.inf, "value": 0.1},
                    learning_rate=math.nan)
    assert stats.losses.total is None and stats.losses.policy is None
    assert stats.history[-1].total_loss is None and stats.learning_rate is None
    path = tmp_path / "stats.json"
    st.write_stats(path, stats)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in stats.json"))
    assert data["losses"]["total"] is None
    assert st.read_stats(path) == stats


def test_non_finite_number_in_config_is_written_as_null(tmp_path):
    stats = st.new_stats("tictactoe", "run-1", {"training": {"rates": [math.nan, 1.0]}})
    st.write_stats(tmp_path / "stats.json", stats)
    assert st.read_stats(tmp_path / "stats.json").config == {"training": {"rates": [None, 1.0]}}


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no stats file"),
        ('{"schema_version": 1, "game": ', "not valid JSON"),
        ("[1, 2]", "not a stats object"),
        ('{"game": "tictactoe"}', "no integer schema_version"),
        ('{"schema_version": 99, "game": "x"}', "schema_version 99, this cartridge_jax reads up"),
        ('{"schema_version": 1, "game": "x"}', "does not match the stats schema at run_id"),
        ('{"schema_version": 1, "step": NaN}', "not valid JSON"),
    ],
)
def test_unusable_files_give_one_line_errors(tmp_path, text, message):
    path = tmp_path / "stats.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(st.StatsError) as caught:
        st.read_stats(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    if text is not None and "99" not in text:  # damaged, not missing or from a newer version
        assert str(caught.value).endswith(": delete it to start a new history")  # no .prev


def test_eval_entry_derives_rates_and_score():
    entry = st.eval_entry(step=5, iteration=1, opponent="random", wins=6, draws=3, losses=1)
    assert entry.games == 10
    assert (entry.win_rate, entry.draw_rate, entry.loss_rate) == (0.6, 0.3, 0.1)
    assert entry.win_rate + entry.draw_rate + entry.loss_rate == pytest.approx(1.0)
    assert entry.score == pytest.approx(0.75)
    with pytest.raises(ValueError, match="wins \\+ draws \\+ losses is not games"):
        st.EvalEntry.model_validate({**entry.model_dump(), "games": 11})
    with pytest.raises(st.StatsError, match="no games"):
        st.eval_entry(step=5, iteration=1, opponent="random", wins=0, draws=0, losses=0)


def test_record_eval_keeps_latest_per_opponent_and_best_model():
    stats = _run(2)
    first = st.eval_entry(step=10, iteration=1, opponent="random", wins=5, draws=0, losses=5)
    second = st.eval_entry(step=20, iteration=2, opponent="random", wins=9, draws=0, losses=1)
    best = st.eval_entry(step=20, iteration=2, opponent="best", wins=7, draws=0, losses=3,
                         became_new_best=True)
    stats = st.record_eval(st.record_eval(stats, [first]), [second, best])
    assert stats.eval_history == [first, second, best]
    assert stats.last_eval == {"random": second, "best": best}
    assert stats.best_model == st.BestModel(iteration=2, step=20)


def test_thinning_keeps_short_histories_whole():
    points = _points(range(1, 11))
    assert st.thin_history(points, 10) == points
    with pytest.raises(ValueError, match="at least 3"):
        st.thin_history(points, 2)


def test_thinning_bounds_length_keeps_ends_and_recent_points_dense():
    points = _points(range(1, 5001))
    thinned = st.thin_history(points, 100)
    iterations = [p.iteration for p in thinned]
    assert len(thinned) <= 100
    assert iterations[0] == 1 and iterations[-1] == 5000
    assert iterations[-50:] == list(range(4951, 5001))  # newest half of the budget: every point
    gaps = [b - a for a, b in zip(iterations, iterations[1:])]
    assert gaps[1:] == sorted(gaps[1:], reverse=True)  # sparser with age (after the first point)
    assert max(gaps[1:]) > 2


def test_thinning_every_iteration_stays_bounded_and_covers_the_run():
    points = []
    for iteration in range(1, 3001):
        points = st.thin_history([*points, *_points([iteration])], 100)
        assert len(points) <= 100
    iterations = [p.iteration for p in points]
    assert iterations[0] == 1 and iterations[-1] == 3000
    assert iterations[-50:] == list(range(2951, 3001))
    # the middle of the run is still represented, not only its two ends
    assert sum(1 for i in iterations if 500 < i < 2500) >= 10


def test_record_iteration_thins_history():
    stats = _run(0)
    for iteration in range(1, 40):
        stats = _record(stats, iteration, max_history=10)
    assert len(stats.history) <= 10
    assert stats.history[0].iteration == 1 and stats.history[-1].iteration == 39


def test_docs_table_matches_the_models():
    assert st.fields_markdown() in DOCS.read_text(), (
        "docs/stats.md is stale: paste cartridge_jax.run.stats.fields_markdown() into it"
    )
