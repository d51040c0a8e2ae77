"""Suite "strength": strength against training compute, the curve users judge a preset by.

One training run bounded by a time budget (`training.time_budget_s`: self-play and training
seconds, evaluation and saves not counted), with in-training evaluation off and a parameter
snapshot every iteration. Afterwards the snapshots nearest below each clock mark (0, 5, 15, 30,
60 minutes...) are measured on whole reference sets, by the agent at each of the given simulation
counts and by the raw network:
  * Connect 4: mistake rates on the four public Pons sets, and on the held-out validation sets
    (cartridge_jax/valdata) that settings and checkpoints are chosen on;
  * Othello: FForum best-move rates and matches against greedy, alphabeta:2 and alphabeta:3;
  * TicTacToe: every reachable position (exhaustive).
The measures are written into the run's stats.json as benchmark points that carry the training
clock and positions generated (the stats page draws them against both), and returned as rows
next to the anchors the project measures itself against (`PEER_CONNECT4`).

Scoring afterwards keeps the clock honest and lets one run be scored again at other simulation
counts: rerunning the suite on a run directory whose budget is spent only measures.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
from etils import epath

from cartridge_jax import games
from cartridge_jax.config import Config, presets
from cartridge_jax.evaluation import agents, arena, position_sets
from cartridge_jax.model import load
from cartridge_jax.run import checkpoint, layout
from cartridge_jax.run import stats as stats_lib
from cartridge_jax.training import loop
from cartridge_jax.training.trainer import Trainer

# A plain pgx + mctx Gumbel AlphaZero (MLP 256x3, 512 games x 64 moves per iteration, 32
# simulations, 0-8 random opening moves, replay of the last 4 iterations) on this project's
# 2-core CPU: mistake rates (%) of its agent at 64 simulations on the Pons sets at 0, 5, 15 and
# 30 minutes of training (issue 17).
PEER_SIMS = 64
PEER_MARKS_MIN = (0, 5, 15, 30)
PEER_CONNECT4 = {
    "connect4/Test_L3_R1": (7.3, 6.8, 5.5, 5.2),
    "connect4/Test_L2_R1": (17.3, 7.2, 6.0, 4.7),
    "connect4/Test_L1_R1": (20.3, 4.4, 3.6, 1.7),
    "connect4/Test_L1_R3": (49.7, 20.3, 16.0, 12.2),
}
# Depth-5 minimax on the same sets (published with them).
MINIMAX5_CONNECT4 = {"connect4/Test_L3_R1": 1.4, "connect4/Test_L2_R1": 0.7,
                     "connect4/Test_L1_R1": 1.7, "connect4/Test_L1_R3": 23.5}

REFERENCE_SETS = {
    "tictactoe": ("exhaustive",),
    "connect4": tuple(presets.CONNECT4_BENCHMARKS),
    "othello": tuple(presets.OTHELLO_BENCHMARKS),
}
MATCH_OPPONENTS = {"othello": ("greedy", "alphabeta:2", "alphabeta:3")}

TABLE = (  # report.Column: header, row key, format
    ("game", "game", "{}"),
    ("mark (min)", "mark_min", "{:g}"),
    ("clock (min)", "clock_min", "{:.1f}"),
    ("iteration", "iteration", "{}"),
    ("positions", "positions", "{:,}"),
    ("measure", "measure", "{}"),
    ("sims", "simulations", "{}"),
    ("ours", "value", "{:.1f}"),
    ("peer (64 sims)", "peer", "{:.1f}"),
)


def training_config(config: Config, budget_s: float) -> Config:
    """`config` bounded by `budget_s` of training clock, evaluation and export off, a snapshot
    per iteration (what the curve is scored from)."""
    return config.model_copy(update={
        "training": config.training.model_copy(update={"time_budget_s": budget_s,
                                                       "snapshot_interval": 1}),
        "evaluation": config.evaluation.model_copy(update={"interval": 0}),
        "export": config.export.model_copy(update={"enabled": False}),
    })


def marked_points(history: Sequence[stats_lib.HistoryPoint], marks_s: Sequence[float],
                  budget_s: float) -> list[tuple[float, stats_lib.HistoryPoint | None]]:
    """(mark, point) per mark: the newest iteration whose clock is at most the mark (None for a
    mark before the first iteration: the untrained network); a mark at or past the budget takes
    the run's last iteration, the one that spent it."""
    chosen = []
    for mark in marks_s:
        if mark >= budget_s and history:
            chosen.append((mark, history[-1]))
            continue
        before = [point for point in history if point.clock_s is not None
                  and point.clock_s <= mark]
        chosen.append((mark, before[-1] if before else None))
    return chosen


def measure(config: Config, *, budget_s: float, marks_s: Sequence[float],
            simulations: Sequence[int], progress: bool = True) -> list[dict[str, Any]]:
    """Trains `config` for `budget_s` of clock in its run directory (resuming it; nothing more
    when its budget is spent), then measures the snapshots at `marks_s` (seconds) with the
    agent at each of `simulations` and the raw network. Returns one row per mark and measure."""
    config = training_config(config, budget_s)
    stats = loop.run(config, progress=progress)
    run_dir = layout.run_dir(config)
    game = games.make(config.common.game)
    points = []
    rows = []
    for mark, point in marked_points(stats.history, marks_s, budget_s):
        model = _model_at(config, run_dir, point)
        for measured in _measures(config, game, model, simulations):
            benchmark = stats_lib.BenchmarkPoint(
                step=0 if point is None else point.step,
                iteration=0 if point is None else point.iteration,
                clock_s=0.0 if point is None else point.clock_s,
                positions_generated=0 if point is None else point.positions_generated,
                **measured)
            points.append(benchmark)
            rows.append(_row(game.name, mark, benchmark))
            print(_row_text(rows[-1]), flush=True)
    _record(run_dir, points)
    return rows


def _model_at(config: Config, run_dir: epath.Path, point: stats_lib.HistoryPoint | None):
    """(apply_fn, params) of the snapshot of `point`'s iteration, or of the untrained network
    (the run's own initial parameters, from its seed)."""
    if point is None:
        trainer = Trainer(config)
        return trainer.network.apply, jax.device_get(trainer.initial_state().train_state.params)
    model = load.load_model(checkpoint.snapshot_path(run_dir, point.iteration), config)
    return model.network.apply, model.params


def _measures(config: Config, game: games.Game, model, simulations: Sequence[int]):
    """{name, metric, value} of every measure of one network: each reference set by the raw
    network ("raw_" metrics) and by the agent at each simulation count (the metric with
    "@<sims>" appended to the set's name), then the matches."""
    apply_fn, params = model
    key = jax.random.key(config.common.seed)
    for name in (*REFERENCE_SETS[game.name], *position_sets.VALIDATION_SETS.get(game.name, ())):
        positions = position_sets.load_benchmark(game, name)
        raw = positions.measure(agents.search_agent(game, apply_fn, params, 0), key)
        for metric, value in raw.items():
            if metric != "n":
                yield {"name": positions.name, "metric": f"raw_{metric}", "value": value}
        for sims in simulations:
            agent = agents.search_agent(game, apply_fn, params, sims)
            for metric, value in positions.measure(agent, key).items():
                if metric != "n":
                    yield {"name": f"{positions.name}@{sims}", "metric": metric, "value": value}
    for opponent in MATCH_OPPONENTS.get(game.name, ()):
        for sims in simulations:
            agent = agents.search_agent(game, apply_fn, params, sims)
            result = arena.match_summary(game, agent, opponent, arena.even_games(
                config.evaluation.games), key)
            yield {"name": f"vs {opponent}@{sims}", "metric": "score", "value": result["score"]}


def _record(run_dir: epath.Path, points: list[stats_lib.BenchmarkPoint]) -> None:
    """Adds the points to the run's stats.json, replacing earlier measures of the same network,
    set and metric (a rescored run keeps one of each)."""
    path = layout.stats_path(run_dir)
    stats = stats_lib.read_stats(path)
    new = {(point.iteration, point.name, point.metric) for point in points}
    kept = [point for point in stats.benchmarks
            if (point.iteration, point.name, point.metric) not in new]
    stats_lib.write_stats(path, stats_lib.record_benchmarks(
        stats.model_copy(update={"benchmarks": kept}), points))


def _row(game: str, mark_s: float, point: stats_lib.BenchmarkPoint) -> dict[str, Any]:
    name, _, sims = point.name.partition("@")
    percent = point.metric.endswith("_rate") or point.metric == "score"
    peer = None
    if (name in PEER_CONNECT4 and point.metric == "mistake_rate" and sims == str(PEER_SIMS)
            and mark_s / 60 in PEER_MARKS_MIN):
        peer = PEER_CONNECT4[name][PEER_MARKS_MIN.index(mark_s / 60)]
    return {
        "game": game,
        "mark_min": mark_s / 60,
        "clock_min": (point.clock_s or 0.0) / 60,
        "iteration": point.iteration,
        "positions": point.positions_generated,
        "measure": f"{name} {point.metric}",
        "simulations": int(sims) if sims else 0,
        "value": 100 * point.value if percent and point.value is not None else point.value,
        "peer": peer,
    }


def _row_text(row: dict[str, Any]) -> str:
    peer = "" if row["peer"] is None else f" (peer {row['peer']:.1f})"
    return (f"{row['mark_min']:g} min (clock {row['clock_min']:.1f}, iteration "
            f"{row['iteration']}): {row['measure']} at {row['simulations']} sims = "
            f"{row['value']:.2f}{peer}")
