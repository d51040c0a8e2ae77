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

Every shipped file has a recorded sha256: the manifest's for the exported files (checked on
the copies before they go live), the card's for stats.json. Files and folders are made
world-readable (0644 / 0755) whatever the umask: a web server running as another user serves
them.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any, NamedTuple

from etils import epath

from cartridge_jax import parallel
from cartridge_jax.evaluation import position_sets
from cartridge_jax.model import export
from cartridge_jax.run import layout, stats

# Cards measure every model at this many simulations per move too, whatever its bot's default:
# the figures the README and earlier cards compare at.
REFERENCE_SIMULATIONS = 128
CARD_FILE = "card.json"
STATS_FILE = "stats.json"
FILE_MODE = 0o644  # shipped files and folders: readable by a web server running as anyone
FOLDER_MODE = 0o755


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
        Measure("vs alphabeta:3", opponent="alphabeta:3", games=100),
    ),
}


def run_suite(config, model_dir: str | pathlib.Path, *, sims: int,
              progress=print) -> list[dict[str, Any]]:
    """The game's strength suite on the model in `model_dir` at `sims` simulations per move,
    one result dict per measure (the measure's name and reproducing command added)."""
    from cartridge_jax.evaluation import measure

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
               *, command: str, stats_sha256: str | None = None) -> dict[str, Any]:
    """card.json's content from the run's stats, the exported manifest and the suite results.

    `stats_sha256` is that of the stats.json shipped beside the card (None: none is).
    """
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
        # The suite searches in JAX with params.msgpack (measure.evaluate loads the export
        # through load_exported); running it through onnxruntime would cost a host round trip
        # per network call and a runtime dependency. model.onnx is the same export of the same
        # parameters (ship checks both against one manifest) and tests/test_export_parity.py
        # holds ONNX = JAX, so the card says which file it measured rather than measuring twice.
        "measured_on": f"{export.PARAMS_FILE} (sha256 {manifest['params_sha256']})",
        "stats_sha256": stats_sha256,
        "agent": manifest.get("agent"),
        "config": run_stats.config,
        "evaluation": results,
    }


def card_simulations(manifest: dict[str, Any]) -> tuple[int, ...]:
    """The simulations a card measures at: the bot's default (the manifest's) and
    `REFERENCE_SIMULATIONS`, which compares models whatever their defaults."""
    bot = (manifest.get("agent") or {}).get("simulations", REFERENCE_SIMULATIONS)
    return tuple(sorted({int(bot), REFERENCE_SIMULATIONS}))


def ship(run_dir: str | os.PathLike, dest: str | pathlib.Path, config, *, command: str,
         sims: Sequence[int] | None = None, progress=print) -> dict[str, Any]:
    """Copies a run's exported model and stats into `dest`, evaluates it there, writes card.json.

    The strength suite runs at each of `sims` simulations per move (default:
    `card_simulations` of the export).

    `run_dir` may be remote (gs://...); `dest` is a local folder. The new folder is assembled
    and checked beside `dest` and swapped in at the end, so `dest` holds the old model or the
    new one, never a mix. Raises ExportError (one line) for an export file that is missing or
    differs from the sha256 its manifest records; `dest` is then left as it was.
    """
    run_dir, dest = epath.Path(run_dir), pathlib.Path(dest)
    source = layout.model_dir(run_dir, config.common.game)
    fix = f"re-export: `python -m cartridge_jax export {run_dir}`"
    if not (source / export.MANIFEST_FILE).is_file():
        raise export.ExportError(f"{source} holds no exported model: run "
                                 f"`python -m cartridge_jax export {run_dir}` first")
    manifest = export.read_manifest(source)
    run_stats = stats.read_stats(run_dir / STATS_FILE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for name, recorded in export.recorded_sha256(manifest).items():
            if recorded is None:
                progress(f"  {name}: {source / export.MANIFEST_FILE} records no sha256 for it "
                         f"(an older export), so it is copied unchecked; {fix} to record one")
            _copy_checked(source / name, staging / name, recorded, fix=fix)
        # stats.json is rewritten every iteration after the export, so the manifest cannot
        # hold its sum: the card records the sum of the copy shipped beside it.
        stats_sha256 = _copy_checked(run_dir / STATS_FILE, staging / STATS_FILE, None,
                                     fix="ship again")
        # The manifest the copies were checked against, not a second read of a file that a
        # running export may have replaced meanwhile.
        export.write_manifest(staging, manifest)
        results = [result for count in (sims or card_simulations(manifest))
                   for result in run_suite(config, staging, sims=count, progress=progress)]
        card = build_card(run_stats, manifest, results, command=command,
                          stats_sha256=stats_sha256)
        (staging / CARD_FILE).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        _make_world_readable(staging)
        _swap_in(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def _copy_checked(source: epath.Path, copy: pathlib.Path, recorded: str | None, *,
                  fix: str) -> str:
    """Copies `source` to `copy` and returns its sha256, checking the bytes read against
    `recorded` (None: nothing to check against) and the copy against the bytes read."""
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise export.ExportError(f"{source} is missing: {fix}") from None
    except OSError as error:
        raise export.ExportError(f"cannot read {source} ({error.strerror}): {fix}") from None
    sha256 = hashlib.sha256(data).hexdigest()
    if recorded is not None and sha256 != recorded:
        raise export.ExportError(
            f"{source} is not the file {export.MANIFEST_FILE} records (sha256 {sha256[:12]}..., "
            f"recorded {recorded[:12]}...: changed or damaged since the export): {fix}")
    copy.write_bytes(data)
    if hashlib.sha256(copy.read_bytes()).hexdigest() != sha256:
        raise export.ExportError(f"the copy of {source} in {copy.parent} differs from it: check "
                                 "that disk, then ship again (nothing was shipped)")
    return sha256


def _make_world_readable(folder: pathlib.Path) -> None:
    """Sets the shipped modes on `folder` and its files: tempfile.mkdtemp makes folders 0700
    and the umask may strip any bit, so nothing is left to either."""
    folder.chmod(FOLDER_MODE)
    for path in folder.iterdir():
        path.chmod(FILE_MODE)


def _swap_in(staging: pathlib.Path, dest: pathlib.Path) -> None:
    """Renames `staging` to `dest`; an existing `dest` is moved aside first, put back if the
    rename fails and removed once it succeeded."""
    old = dest.with_name(f".{dest.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    try:
        staging.rename(dest)
    except OSError:
        if old.exists():
            old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


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
    for key in ("best_move_rate", "mistake_rate", "optimal_rate"):  # Othello: best moves
        if key in result:
            return f"{key.replace('_', ' ')} {100 * result[key]:.1f}% (n={result['n']})"
    return (f"W/D/L {result['wins']}/{result['draws']}/{result['losses']}, score "
            f"{100 * result['score']:.0f}% [{100 * result['score_low']:.0f}-"
            f"{100 * result['score_high']:.0f}]")
