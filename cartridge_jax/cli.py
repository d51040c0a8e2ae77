"""The command line: `python -m cartridge_jax <command>` (also installed as `cartridge-jax`).

Every command that reads the configuration takes `--config FILE` and `--<section>.<key> VALUE`
for any key (see `python -m cartridge_jax config`), plus short forms for the common ones.
User errors print one line and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from typing import Callable, Sequence

from cartridge_jax import config as config_lib
from cartridge_jax import games

USAGE_ERROR = 2

# Short flags for the most used keys: --game X is --common.game X, and so on.
SHORT_FLAGS = {
    "game": "common.game",
    "seed": "common.seed",
    "preset": "common.preset",
    "run-dir": "common.run_dir",
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse's own print the whole usage first)."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_config_flags(parser: argparse.ArgumentParser, *, short: Sequence[str]) -> None:
    parser.add_argument("--config", metavar="FILE", help="configuration file (default: "
                        "$CARTRIDGE_CONFIG, else ./config.toml if present)")
    for name in short:
        parser.add_argument(f"--{name}", dest=f"short:{SHORT_FLAGS[name]}", metavar="VALUE",
                            help=f"same as --{SHORT_FLAGS[name]}")
    # The usage line lists the command's own options; the ~50 keys are summarised, not listed.
    own_usage = parser.format_usage().removeprefix("usage: ").removeprefix(parser.prog).strip()
    parser.usage = f"%(prog)s {own_usage} [--<section>.<key> VALUE ...]"
    group = parser.add_argument_group("configuration keys (any key of `config`)")
    for section, key, default, description in config_lib.config_keys():
        group.add_argument(f"--{section}.{key}", dest=f"key:{section}.{key}", metavar="VALUE",
                           help=f"{description} (default: {default!r})")


def _given_flags(args: argparse.Namespace) -> dict[str, str]:
    """The configuration flags on the command line, as {"section.key": text}."""
    flags = {}
    for dest, value in vars(args).items():
        if value is not None and dest.startswith(("short:", "key:")):
            flags[dest.split(":", 1)[1]] = value
    return flags


def _load_config(args: argparse.Namespace, **forced: str):
    """(config, sources) from file/env/flags; `forced` ("section.key" -> value) wins over all."""
    flags = {**_given_flags(args), **forced}
    return config_lib.load_config(config_file=args.config, flags=flags)


def _cmd_config(args: argparse.Namespace) -> int:
    print(config_lib.format_config(*_load_config(args)))
    return 0


def _cmd_perft(args: argparse.Namespace) -> int:
    from cartridge_jax import perft

    game = games.make(args.game)
    if args.depth < 0:
        raise config_lib.ConfigError(f"perft depth {args.depth} is negative: use 0 or more")
    started = time.perf_counter()
    if args.divide:
        counts = perft.divide(game, args.depth)
        for move, count in counts.items():
            print(f"{move}: {count}")
        total = sum(counts.values())
    else:
        total = perft.perft(game, args.depth)
    print(f"# {game.display_name} perft({args.depth}) in {time.perf_counter() - started:.2f} s")
    print(total)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from cartridge_jax import demo

    config, _ = _load_config(args, **{"common.game": args.game})
    demo.play(games.make(config.common.game), agents=(args.first, args.second),
              seed=config.common.seed, out=sys.stdout)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from cartridge_jax import checkpoint, export, loop

    forced = {} if args.iterations is None else {"training.iterations": args.iterations}
    config, _ = _load_config(args, **forced)
    enable_compilation_cache()
    try:
        loop.run(config, progress=not args.no_progress)
    except (checkpoint.CheckpointError, export.ExportError) as error:
        raise config_lib.ConfigError(str(error)) from None
    except loop.TrainingError as error:
        print(f"cartridge-jax train: error: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from cartridge_jax import checkpoint, export, loop

    run_dir = pathlib.Path(args.run_dir)
    if not run_dir.is_dir():
        raise config_lib.ConfigError(f"run directory {run_dir} does not exist: name a folder "
                                     "that `train` wrote (its --run-dir)")
    config = _run_config(args, run_dir)
    enable_compilation_cache()
    try:
        trainer, state, iteration = loop.restore_latest(config)
        out_dir = args.out or export.model_dir(run_dir, trainer.game.name)
        manifest = export.export_model(
            trainer.game, trainer.network, state.train_state.params, config.model, out_dir,
            step=int(state.train_state.step), iteration=iteration,
            opset=config.export.onnx_opset, ir_version=config.export.onnx_ir_version)
    except (checkpoint.CheckpointError, export.ExportError) as error:
        raise config_lib.ConfigError(str(error)) from None
    print(f"Exported iteration {iteration} (step {manifest['step']}) of {run_dir} to {out_dir}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from cartridge_jax import evaluate

    path = pathlib.Path(args.model)
    manifest = path / "manifest.json"
    if manifest.is_file():  # an exported model: its manifest names the game
        try:
            game = json.loads(manifest.read_text())["game"]
        except (OSError, ValueError, KeyError) as error:
            raise config_lib.ConfigError(f"{manifest} is not a readable model manifest: {error}")
        config, _ = _load_config(args, **{"common.game": game})
    elif path.is_dir():
        config = _run_config(args, path)
    else:
        raise config_lib.ConfigError(f"model {path} is neither a run directory nor an exported "
                                     "model folder (with manifest.json)")
    enable_compilation_cache()
    try:
        result = evaluate.evaluate(
            config, model_dir_or_run_dir=path, sims=args.sims, positions=args.positions,
            opponent=args.opponent, games=args.games, exhaustive=args.exhaustive)
    except ValueError as error:
        raise config_lib.ConfigError(str(error)) from None
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")
    return 0


def _run_config(args: argparse.Namespace, run_dir: pathlib.Path) -> config_lib.Config:
    """The configuration a run was trained with: its stats.json's, under any flags given.

    A run directory without stats.json gets the usual layers (file, environment, flags).
    """
    from cartridge_jax import stats

    recorded = {}
    if (run_dir / "stats.json").exists():
        try:
            saved = stats.read_stats(run_dir / "stats.json").config
        except stats.StatsError as error:
            raise config_lib.ConfigError(str(error)) from None
        recorded = {f"{section}.{key}": value
                    for section, values in saved.items() for key, value in values.items()}
    flags = {**recorded, **_given_flags(args), "common.run_dir": str(run_dir)}
    config, _ = config_lib.load_config(config_file=args.config, flags=flags)
    return config


def enable_compilation_cache() -> None:
    """Keeps compiled programs on disk, so a rerun of the same configuration starts fast."""
    import jax

    cache = os.environ.get(config_lib.JAX_CACHE_DIR_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "cartridge_jax", "jax")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def _cmd_bench(args: argparse.Namespace) -> int:
    from cartridge_jax import bench

    bench.main(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cartridge-jax", description="AlphaZero for board games in JAX.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    config_cmd = commands.add_parser(
        "config", help="print the effective configuration and where each value came from")
    _add_config_flags(config_cmd, short=("game", "seed", "preset", "run-dir"))
    config_cmd.set_defaults(run=_cmd_config)

    perft_cmd = commands.add_parser(
        "perft", help="count move paths of exactly DEPTH moves from the start",
        description="Counts move paths of exactly DEPTH moves from the start position, counting "
        "a path only if the game had not ended before its last move (chess-style perft; an "
        "Othello pass is a move). The count alone is the last line.")
    perft_cmd.add_argument("game", metavar="GAME", help=f"one of {', '.join(games.names())}")
    perft_cmd.add_argument("depth", metavar="DEPTH", type=int, help="number of moves")
    perft_cmd.add_argument("--divide", action="store_true", help="also print the count below "
                           "each first move")
    perft_cmd.set_defaults(run=_cmd_perft)

    demo_cmd = commands.add_parser(
        "demo", help="play one game between two baseline agents, printing every move",
        description="Plays one game between two baseline agents and prints the board after "
        "every move. The seed comes from the configuration (--seed to change it).")
    demo_cmd.add_argument("game", metavar="GAME", help=f"one of {', '.join(games.names())}")
    for side, default in (("first", "greedy"), ("second", "random")):
        demo_cmd.add_argument(f"--{side}", choices=("random", "greedy"), default=default,
                              help=f"agent for the side that moves {side} (default: {default})")
    _add_config_flags(demo_cmd, short=("seed",))
    demo_cmd.set_defaults(run=_cmd_demo)

    train_cmd = commands.add_parser(
        "train", help="train an AlphaZero agent (resumes from the run directory)",
        description="Runs iterations of self-play, training and evaluation. Rerunning the same "
        "command on the same run directory resumes from its last checkpoint; Ctrl-C saves and "
        "stops.")
    train_cmd.add_argument("--iterations", metavar="N", help="same as --training.iterations")
    train_cmd.add_argument("--no-progress", action="store_true",
                           help="no progress bars (one summary line per iteration only)")
    _add_config_flags(train_cmd, short=("game", "seed", "preset", "run-dir"))
    train_cmd.set_defaults(run=_cmd_train)

    export_cmd = commands.add_parser(
        "export", help="export a run's latest checkpoint to ONNX for the web page",
        description="Writes model.onnx, params.msgpack, network.json and manifest.json (last) "
        "for the latest checkpoint of RUN_DIR. The configuration is the one the run recorded in "
        "its stats.json; flags given here override it.")
    export_cmd.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by train")
    export_cmd.add_argument("--out", metavar="DIR",
                            help="output folder (default: RUN_DIR/models/<game>)")
    _add_config_flags(export_cmd, short=())
    export_cmd.set_defaults(run=_cmd_export)

    eval_cmd = commands.add_parser(
        "eval", help="measure a trained model: benchmark positions, a match, or exhaustively",
        description="Evaluates the agent (PUCT over the network, no noise, most visited move) "
        "of a run directory (its latest checkpoint) or an exported model folder.")
    eval_cmd.add_argument("--model", required=True, metavar="PATH",
                          help="run directory or exported model folder (with manifest.json)")
    eval_cmd.add_argument("--sims", type=int, metavar="N", help="simulations per move (default: "
                          "evaluation.simulations; 0 = the raw network's best move)")
    measure = eval_cmd.add_mutually_exclusive_group(required=True)
    measure.add_argument("--positions", metavar="FILE", help="benchmark file: Connect 4 .jsonl "
                         "(Pons) or Othello .obf (FForum), e.g. from cartridge_jax/refdata")
    measure.add_argument("--opponent", metavar="NAME",
                         help="play a match against random, greedy or perfect (TicTacToe)")
    measure.add_argument("--exhaustive", action="store_true",
                         help="TicTacToe: share of all reachable positions played optimally")
    eval_cmd.add_argument("--games", type=int, metavar="N",
                          help="games of the match (even; default: evaluation.games)")
    eval_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    _add_config_flags(eval_cmd, short=("game", "seed"))
    eval_cmd.set_defaults(run=_cmd_eval)

    bench_cmd = commands.add_parser(
        "bench", help="measure random-play throughput of each game (next to pgx if installed)")
    from cartridge_jax import bench

    bench.add_arguments(bench_cmd)
    bench_cmd.set_defaults(run=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (config_lib.ConfigError, games.UnknownGameError) as error:
        print(f"cartridge-jax {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(f"cartridge-jax {args.command}: interrupted", file=sys.stderr)
        return 130
