"""The strength suite: its numbers come from real play (a weakened network scores worse), the
marks pick the right snapshots, and the curve lands in stats.json with its clock."""

import json
import pathlib

import jax
import pytest
from helpers import TINY_TOML

from cartridge_jax import games
from cartridge_jax.bench import strength
from cartridge_jax.config import Config
from cartridge_jax.model import load
from cartridge_jax.run import stats as stats_lib

SHIPPED_TICTACTOE = pathlib.Path(__file__).resolve().parent.parent / "site/models/tictactoe"


def point(iteration: int, clock_s: float) -> stats_lib.HistoryPoint:
    return stats_lib.HistoryPoint(step=10 * iteration, iteration=iteration, wall_time_s=clock_s,
                                  clock_s=clock_s, positions_generated=100 * iteration,
                                  replay_size=100 * iteration)


def test_marks_take_the_newest_snapshot_at_or_before_them():
    history = [point(1, 40.0), point(2, 80.0), point(3, 130.0)]
    chosen = strength.marked_points(history, [0.0, 60.0, 80.0, 100.0, 120.0], budget_s=120.0)
    assert [(mark, p and p.iteration) for mark, p in chosen] == [
        (0.0, None),  # before the first iteration: the untrained network
        (60.0, 1), (80.0, 2), (100.0, 2),
        (120.0, 3),  # the budget's mark: the iteration that spent it, past the mark
    ]


def test_a_weakened_network_scores_worse():
    model = load.load_model(SHIPPED_TICTACTOE)
    game = games.make("tictactoe")
    # The same network with its weights shrunk towards zero: near-uniform priors and values.
    weakened = jax.tree.map(lambda leaf: 0.01 * leaf, model.params)
    scores = {}
    for name, params in (("trained", model.params), ("weakened", weakened)):
        measures = list(strength._measures(Config(), game, (model.network.apply, params), [4]))
        scores[name] = {(m["name"], m["metric"]): m["value"] for m in measures}
    assert set(scores["trained"]) == {("tictactoe/exhaustive", "raw_optimal_rate"),
                                      ("tictactoe/exhaustive@4", "optimal_rate")}
    for measure, value in scores["trained"].items():
        assert value > scores["weakened"][measure] + 0.1, measure


@pytest.mark.slow
def test_the_curve_is_written_to_stats_json_and_rescoring_does_not_train(run_cli, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    run_dir = tmp_path / "run"
    argv = ["bench", "--suite", "strength", "--games", "tictactoe", "--config",
            str(tmp_path / "tiny.toml"), "--common.run_dir", str(run_dir),
            "--training.iterations", "1000", "--budget-min", "0.05", "--marks", "0,0.05,9",
            "--strength-sims", "2", "--out", str(tmp_path / "out" / "b.json")]
    status, out, err = run_cli(*argv)
    assert status == 0, err
    stats = stats_lib.read_stats(run_dir / "stats.json")
    assert stats.history[-1].clock_s >= 3.0  # the budget was spent, then training stopped
    assert stats.iteration < 1000
    rows = json.loads((tmp_path / "out" / "b.json").read_text())["strength"]
    assert [row["mark_min"] for row in rows] == [0, 0, 0.05, 0.05]  # 9 is past the budget
    last = stats.history[-1]
    by_key = {(p.iteration, p.name, p.metric): p for p in stats.benchmarks}
    assert len(by_key) == len(stats.benchmarks) == 4
    final = by_key[(last.iteration, "tictactoe/exhaustive@2", "optimal_rate")]
    assert (final.clock_s, final.positions_generated, final.step) == (
        last.clock_s, last.positions_generated, last.step)
    assert by_key[(0, "tictactoe/exhaustive", "raw_optimal_rate")].clock_s == 0.0

    # Scored again at another simulation count: no more training, the earlier points kept.
    status, out, err = run_cli(*argv[:-4], "--strength-sims", "3", *argv[-2:])
    assert status == 0, err
    again = stats_lib.read_stats(run_dir / "stats.json")
    assert again.iteration == stats.iteration
    names = {(p.iteration, p.name) for p in again.benchmarks}
    assert (last.iteration, "tictactoe/exhaustive@2") in names
    assert (last.iteration, "tictactoe/exhaustive@3") in names
    assert len(again.benchmarks) == 6  # raw points replaced, not repeated
