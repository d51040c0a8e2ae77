"""Throughput benchmarks, written as JSON, a markdown table and a plot (`scripts/bench.py`).

Suites (`--suite`, comma-separated, or "all"):
  games      random-play steps/s of each game at several batch sizes, next to pgx;
  selfplay   positions/s of the Trainer's self-play phase, next to the pgx reference loop;
  learner    gradient steps/s and samples/s of the Trainer's training phase;
  iteration  one training iteration phase by phase: self-play, training, evaluation, export,
             checkpoint, compilation; peak memory, replay bytes per position;
  scaling    self-play positions/s and training steps/s on 1, 2, 4, ... of this process's
             devices (on a CPU, simulate them: XLA_FLAGS=--xla_force_host_platform_device_count=4);
  search     milliseconds per simulation of one batched search against simulations and batch
             size, ours (model.tree_search) next to mctx's, zero-cost and preset networks;
  strength   one training run bounded by --budget-min minutes of self-play + training, then
             the agent's strength at clock marks on whole reference sets (bench/strength.py),
             next to the plain pgx + mctx peer's curve.
The iteration and strength suites measure the configuration that `train` would use (presets,
--config, --section.key flags); the others measure each game's presets (see bench/presets.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import pathlib
from typing import Any, Callable

from cartridge_jax import games
from cartridge_jax._files import atomic_write_text
from cartridge_jax.bench import (
    device,
    iteration,
    learner,
    presets,
    random_play,
    report,
    scaling,
    search,
    selfplay,
    strength,
)
from cartridge_jax.config import Config


@dataclasses.dataclass(frozen=True)
class Suite:
    key: str  # the suite's rows in the JSON output
    title: str  # its heading in the markdown
    table: tuple  # its columns: report.Column
    table_rows: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = lambda rows: rows


SUITES = {
    "games": Suite("random_play", "Random play, steps/s", random_play.TABLE),
    "selfplay": Suite("selfplay", "Self-play, positions/s (search + step + replay insert)",
                      selfplay.TABLE),
    "learner": Suite("learner", "Learner, gradient steps/s", learner.TABLE),
    "iteration": Suite("iteration", "One training iteration, seconds per phase", iteration.TABLE,
                       iteration.table_rows),
    "scaling": Suite("scaling", "Scaling over devices (global batches fixed)", scaling.TABLE),
    "search": Suite("search", "Search, milliseconds per simulation", search.TABLE),
    "strength": Suite("strength", "Strength against training clock (mistake rates and scores in "
                      "%)", strength.TABLE),
}


def _run_suite(name: str, args: argparse.Namespace,
               load_config: Callable[[str], Config]) -> list[dict[str, Any]]:
    with_pgx = not args.no_pgx
    nets = args.nets or presets.default_nets()
    if name == "games":
        return random_play.measure(args.games, args.batch_sizes, args.steps, args.repeats, with_pgx)
    if name == "selfplay":
        return selfplay.measure(args.games, nets, args.sims, args.selfplay_games,
                                args.selfplay_moves, args.repeats, with_pgx, args.dtype)
    if name == "learner":
        return learner.measure(args.games, nets, args.learner_steps, args.repeats, args.dtype)
    if name == "scaling":
        return scaling.measure(args.games, nets, args.repeats, games=args.selfplay_games,
                               moves=args.selfplay_moves, train_steps=args.learner_steps)
    if name == "search":
        return search.measure(args.games, nets, args.search_sims, args.search_batches,
                              args.repeats, not args.no_mctx)
    if name == "strength":
        return [row for game in args.games for row in strength.measure(
            _strength_config(load_config(game), pathlib.Path(args.out).parent),
            budget_s=60 * args.budget_min, marks_s=[60 * mark for mark in args.marks
                                                    if mark <= args.budget_min],
            simulations=args.strength_sims)]
    return iteration.measure([load_config(game) for game in args.games])


def _strength_config(config: Config, out_dir: pathlib.Path) -> Config:
    """The configuration with its own run directory beside the outputs, unless one is given:
    the suite must not resume (or spoil) the game's usual run."""
    if config.common.run_dir:
        return config
    run_dir = out_dir / f"strength-{config.common.game}"
    return config.model_copy(update={"common": config.common.model_copy(
        update={"run_dir": str(run_dir)})})


def markdown(result: dict[str, Any]) -> str:
    sections = [
        f"# {suite.title}\n\n"
        + report.markdown_table(suite.table_rows(result[suite.key]), suite.table)
        for suite in SUITES.values() if suite.key in result
    ]
    sections.append(f"# Device\n\n{report.device_text(result['device'])}")
    return "\n\n".join(sections) + "\n"


def main(args: argparse.Namespace, load_config: Callable[[str], Config]) -> dict[str, Any]:
    """Runs the chosen suites; `load_config(game)` gives the iteration suite's configuration.

    The outputs are rewritten after every suite, so a long run keeps what it has measured.
    """
    info = device.device_info()
    print(f"# {report.device_text(info)}", flush=True)
    out = pathlib.Path(args.out)
    result: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": info,
        "suites": args.suite,
    }
    for name in args.suite:
        print(f"\n## {SUITES[name].title}", flush=True)
        result[SUITES[name].key] = _run_suite(name, args, load_config)
        atomic_write_text(out, json.dumps(result, indent=1) + "\n")
        atomic_write_text(out.with_suffix(".md"), markdown(result))
        report.plot(result, out.with_suffix(".png"))
    print(f"\n{markdown(result)}\nwrote {out}, {out.with_suffix('.md')} and "
          f"{out.with_suffix('.png')}", flush=True)
    return result


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _float_list(text: str) -> list[float]:
    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not a number") from None
        if not 0 <= values[-1] < float("inf"):
            raise argparse.ArgumentTypeError(f"{part!r} must be 0 or more")
    return values


def _int_list(text: str) -> list[int]:
    return [_positive_int(part) for part in text.split(",")]


def _name_list(choices: list[str], what: str, all_names: list[str] | None = None):
    def parse(text: str) -> list[str]:
        if all_names is not None and text == "all":
            return list(all_names)
        names = text.split(",")
        unknown = [name for name in names if name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {unknown[0]!r}: choose from {', '.join(choices)}"
                + (" (or all)" if all_names is not None else ""))
        return names

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", type=_name_list(list(SUITES), "suite",
                                                   [name for name in SUITES if name != "strength"]),
                        default=["games"], help="comma-separated suites: games, selfplay, "
                        "learner, iteration, scaling, search, strength, or all (every one but "
                        "strength, which trains for --budget-min; default: games)")
    parser.add_argument("--games", type=_name_list(games.names(), "game"), default=games.names(),
                        help="comma-separated games (default: all)")
    parser.add_argument("--repeats", type=_positive_int, default=3,
                        help="timed runs; the best counts (default: 3)")
    parser.add_argument("--no-pgx", action="store_true", help="skip the pgx comparisons")
    parser.add_argument("--out", default="bench_results/bench.json",
                        help="JSON output; the .md table and .png plot are written beside it")
    group = parser.add_argument_group("suite games")
    group.add_argument("--batch-sizes", type=_int_list, default=[64, 256, 1024, 4096, 8192],
                       help="comma-separated batch sizes (default: 64,256,1024,4096,8192)")
    group.add_argument("--steps", type=_positive_int, default=100,
                       help="moves per game per timed run (default: 100)")
    group = parser.add_argument_group("suites selfplay, learner and scaling")
    group.add_argument("--nets", type=_name_list(list(presets.NETS), "net"), default=None,
                       help="networks: tiny (a 32-unit MLP), cpu, gpu (the presets'); default: "
                       "tiny,cpu on a CPU, all on an accelerator")
    group.add_argument("--sims", type=_int_list, default=[8, 32, 64],
                       help="self-play simulations per move (default: 8,32,64)")
    group.add_argument("--selfplay-games", type=_positive_int, metavar="N",
                       help="games in the self-play batch (default: each preset's)")
    group.add_argument("--selfplay-moves", type=_positive_int, metavar="N",
                       help="moves per timed self-play chunk (default: each preset's chunk)")
    group.add_argument("--learner-steps", type=_positive_int, metavar="N",
                       help="gradient steps per timed run (default: each preset's chunk)")
    group.add_argument("--dtype", choices=("float32", "bfloat16"),
                       help="selfplay and learner: the networks' compute dtype (default: each "
                       "preset's)")
    group = parser.add_argument_group("suite search")
    group.add_argument("--search-sims", type=_int_list, default=[16, 64, 128, 256, 512, 1024],
                       help="simulations of the simulations sweep (default: "
                       "16,64,128,256,512,1024)")
    group.add_argument("--search-batches", type=_int_list, default=[1, 16, 128, 1024, 4096],
                       help="batch sizes of the batch sweep (default: 1,16,128,1024,4096)")
    group.add_argument("--no-mctx", action="store_true", help="time our search alone")
    group = parser.add_argument_group("suite strength")
    group.add_argument("--budget-min", type=_positive_float, default=15.0, metavar="MINUTES",
                       help="training clock of the run, self-play + training (default: 15)")
    group.add_argument("--marks", type=_float_list, default=[0, 5, 15, 30, 60],
                       metavar="MINUTES", help="clock marks to measure, up to the budget "
                       "(default: 0,5,15,30,60)")
    group.add_argument("--strength-sims", type=_int_list, default=[128], metavar="N",
                       help="agent simulations of the measures; the raw network is always "
                       "measured too (default: 128)")
