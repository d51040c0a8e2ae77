"""Model cards: where a shipped model came from and how strong it measured.

    results = run_suite(config, model_dir)                     # the game's strength suite
    card = build_card(run_dir, model_dir, results, command=...)
    ship(run_dir, dest, config, command=...)                   # copy + evaluate + card.json

A shipped model folder (`site/models/<game>/`) holds the exported files (model.onnx,
manifest.json, params.msgpack, network.json), the run's `stats.json` (the stats page draws it)
and `card.json`: the training configuration, iterations, positions seen, wall time, hardware
and the results of the game's strength suite (`SUITES`), the numbers the README's strength
table quotes. Each measure is one `measure.evaluate` call, so `python -m cartridge_jax eval`
reproduces any row.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from typing import Any, NamedTuple

from etils import epath

from cartridge_jax import _files, parallel
from cartridge_jax.evaluation import position_sets
from cartridge_jax.model import export
from cartridge_jax.run import layout, stats

CARD_FILE = "card.json"
STATS_FILE = "stats.json"


class Measure(NamedTuple):
    """One row of a strength suite: a benchmark file, an opponent, or TicTacToe's exhaustive
    check. `games` is the arena size (None: not an arena)."""

    name: str
    positions: str | None = None  # a reference set's name (position_sets.REFERENCE_SETS)
    opponent: str | None = None
    games: int | None = None
    exhaustive: bool = False

    def eval_args(self) -> dict[str, Any]:
        """Keyword arguments of `measure.evaluate` for this measure."""
        return {"positions": self.positions, "opponent": self.opponent, "games": self.games,
                "exhaustive": self.exhaustive}

    def command(self, model: str, sims: int) -> str:
        """The `eval` command line that reproduces this measure."""
        if self.positions is not None:
            how = f"--positions cartridge_jax/refdata/{self.positions}"
        elif self.opponent is not None:
            how = f"--opponent {self.opponent} --games {self.games}"
        else:
            how = "--exhaustive"
        return f"python -m cartridge_jax eval --model {model} --sims {sims} {how}"


def _reference_sets(game: str) -> tuple[Measure, ...]:
    """The game's public reference sets, each measured whole, named by its file's stem."""
    return tuple(Measure(pathlib.PurePath(name).stem, positions=name)
                 for name in position_sets.REFERENCE_SETS[game] if name != "exhaustive")


# Per game, the measures the targets are stated in (README strength table).
SUITES: dict[str, tuple[Measure, ...]] = {
    "tictactoe": (
        Measure("exhaustive", exhaustive=True),
        Measure("vs perfect", opponent="perfect", games=100),
        Measure("vs random", opponent="random", games=100),
    ),
    "connect4": (
        *_reference_sets("connect4"),  # end-easy, middle-easy, beginning-easy, beginning-hard
        Measure("vs random", opponent="random", games=100),
        Measure("vs greedy", opponent="greedy", games=100),
        Measure("vs mcts-rollout:1000", opponent="mcts-rollout:1000", games=50),
        Measure("vs alphabeta:5", opponent="alphabeta:5", games=50),
    ),
    "othello": (
        *_reference_sets("othello"),
        Measure("vs random", opponent="random", games=100),
        Measure("vs greedy", opponent="greedy", games=100),
        Measure("vs alphabeta:2", opponent="alphabeta:2", games=100),
    ),
}


def run_suite(config, model_dir: str | pathlib.Path, *, sims: int | None = None,
              progress=print) -> list[dict[str, Any]]:
    """The game's strength suite on the model in `model_dir`, one result dict per measure
    (the measure's name and reproducing command added)."""
    from cartridge_jax.evaluation import measure

    sims = config.evaluation.simulations if sims is None else sims
    results = []
    for suite_measure in SUITES[config.common.game]:
        result = measure.evaluate(config, model_dir_or_run_dir=model_dir, sims=sims,
                                  **suite_measure.eval_args())
        result.pop("model", None)  # a temporary path while shipping; `command` names the model
        result.pop("positions", None)
        result.pop("search_seconds", None)  # a timing of this machine, not a measure of strength
        result["measure"] = suite_measure.name
        result["command"] = suite_measure.command(f"site/models/{config.common.game}", sims)
        progress(f"  {suite_measure.name}: " + ", ".join(
            f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
            for key, value in result.items() if key not in ("command", "measure", "game")))
        results.append(result)
    return results


def build_card(run_stats: stats.Stats, manifest: dict[str, Any], results: list[dict[str, Any]],
               *, command: str) -> dict[str, Any]:
    """card.json's content from the run's stats, the exported manifest and the suite results."""
    return {
        "game": run_stats.game,
        "run_id": run_stats.run_id,
        "created": stats.utc_now(),
        "trained_with": command,
        "iterations": run_stats.iteration,
        "step": manifest["step"],
        "positions_generated": run_stats.positions_generated,
        "games_played": run_stats.games_played,
        "samples_seen": run_stats.samples_seen,
        "wall_time_s": run_stats.wall_time_s,
        "hardware": parallel.hardware(),
        "model_sha256": manifest["sha256"],
        "agent": manifest.get("agent"),
        "config": run_stats.config,
        "evaluation": results,
    }


def ship(run_dir: str | os.PathLike, dest: str | pathlib.Path, config, *, command: str,
         sims: int | None = None, progress=print) -> dict[str, Any]:
    """Copies a run's exported model and stats into `dest`, evaluates it there, writes card.json.

    `run_dir` may be remote (gs://...); `dest` is a local folder. The new folder is assembled
    beside `dest` and swapped in at the end, so `dest` holds the old model or the new one, never
    a mix.
    """
    run_dir, dest = epath.Path(run_dir), pathlib.Path(dest)
    source = layout.model_dir(run_dir, config.common.game)
    if not (source / export.MANIFEST_FILE).is_file():
        raise export.ExportError(f"{source} holds no exported model: run "
                                 f"`python -m cartridge_jax export {run_dir}` first")
    run_stats = stats.read_stats(run_dir / STATS_FILE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        # Read through epath, not shutil.copy2: the run directory may be remote.
        for name in (export.MODEL_FILE, export.PARAMS_FILE, export.NETWORK_FILE,
                     export.MANIFEST_FILE):
            (staging / name).write_bytes((source / name).read_bytes())
        (staging / STATS_FILE).write_bytes((run_dir / STATS_FILE).read_bytes())
        manifest = json.loads((staging / export.MANIFEST_FILE).read_text())
        results = run_suite(config, staging, sims=sims, progress=progress)
        card = build_card(run_stats, manifest, results, command=command)
        _files.atomic_write_text(staging / CARD_FILE, json.dumps(card, indent=1) + "\n")
        old = dest.with_name(f".{dest.name}-old")
        if dest.exists():
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
        staging.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def strength_table(cards: list[dict[str, Any]]) -> str:
    """The README's strength table (markdown) from model cards."""
    rows = ["| game | measure | result | sims | reproduce |", "| --- | --- | --- | --- | --- |"]
    for card in cards:
        for result in card["evaluation"]:
            rows.append(f"| {card['game']} | {result['measure']} | {_headline(result)} | "
                        f"{result['simulations']} | `{result['command']}` |")
    return "\n".join(rows)


def _headline(result: dict[str, Any]) -> str:
    """The one number a table row shows for a measure's result."""
    for key in ("mistake_rate", "best_move_rate", "optimal_rate"):
        if key in result:
            return f"{key.replace('_', ' ')} {100 * result[key]:.1f}% (n={result['n']})"
    return (f"W/D/L {result['wins']}/{result['draws']}/{result['losses']}, score "
            f"{100 * result['score']:.0f}% [{100 * result['score_low']:.0f}-"
            f"{100 * result['score_high']:.0f}]")
