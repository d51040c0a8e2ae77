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
import traceback
import time
from typing import Callable, Sequence

from etils import epath

from cartridge_jax import config as config_lib
from cartridge_jax import games
from cartridge_jax.run import layout, stats

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
    return config_lib.load_config(config_file=args.config, flags=flags, backend=_backend(flags))


def _backend(flags: dict) -> str:
    """JAX's platform, which the "auto" preset chooses for; "cpu" without starting JAX when
    the preset is forced to "none" (train reads [distributed] before JAX may start)."""
    if flags.get("common.preset") == "none":
        return "cpu"
    import jax

    return jax.default_backend()


def _config_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "config", help="print the effective configuration and where each value came from")
    parser.add_argument("--markdown", action="store_true", help="print the reference of "
                        "every key and preset as markdown (docs/configuration.md) instead")
    _add_config_flags(parser, short=("game", "seed", "preset", "run-dir"))
    parser.set_defaults(run=_cmd_config)


def _cmd_config(args: argparse.Namespace) -> int:
    if args.markdown:
        from cartridge_jax.config import reference

        sys.stdout.write(reference.configuration_markdown())
        return 0
    print(config_lib.format_config(*_load_config(args)))
    return 0


def _perft_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "perft", help="count move paths of exactly DEPTH moves from the start",
        description="Counts move paths of exactly DEPTH moves from the start position, counting "
        "a path only if the game had not ended before its last move (chess-style perft; an "
        "Othello pass is a move). The count alone is the last line.")
    parser.add_argument("game", metavar="GAME", help=f"one of {', '.join(games.names())}")
    parser.add_argument("depth", metavar="DEPTH", type=int, help="number of moves")
    parser.add_argument("--divide", action="store_true", help="also print the count below "
                        "each first move")
    parser.set_defaults(run=_cmd_perft)


def _cmd_perft(args: argparse.Namespace) -> int:
    from cartridge_jax.games import perft

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


def _demo_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="play one game between two baseline agents, printing every move",
        description="Plays one game between two baseline agents and prints the board after "
        "every move. The seed comes from the configuration (--seed to change it).")
    parser.add_argument("game", metavar="GAME", help=f"one of {', '.join(games.names())}")
    for side, default in (("first", "greedy"), ("second", "random")):
        parser.add_argument(f"--{side}", choices=("random", "greedy"), default=default,
                            help=f"agent for the side that moves {side} (default: {default})")
    _add_config_flags(parser, short=("seed",))
    parser.set_defaults(run=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from cartridge_jax.play import demo

    config, _ = _load_config(args, **{"common.game": args.game})
    demo.play(games.make(config.common.game), agents=(args.first, args.second),
              seed=config.common.seed, out=sys.stdout)
    return 0


def _train_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="train an AlphaZero agent (resumes from the run directory)",
        description="Runs iterations of self-play, training and evaluation, saving each "
        "completed one (every --training.checkpoint_interval). Ctrl-C or SIGTERM drops the "
        "iteration in progress, waits for the save in flight and stops; a second Ctrl-C quits "
        "at once. Rerunning the same command on the same run directory resumes after the last "
        "iteration saved.")
    parser.add_argument("--iterations", metavar="N", help="same as --training.iterations")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (one summary line per iteration only)")
    _add_config_flags(parser, short=("game", "seed", "preset", "run-dir"))
    parser.set_defaults(run=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from cartridge_jax import parallel
    from cartridge_jax.model import export
    from cartridge_jax.run import checkpoint, lock
    from cartridge_jax.training import loop

    forced = {} if args.iterations is None else {"training.iterations": args.iterations}
    # Joining other processes must come before JAX starts its backend, and picking the "auto"
    # preset starts it: the [distributed] section (never set by presets) is read first.
    unresolved, _ = _load_config(args, **forced, **{"common.preset": "none"})
    parallel.join(unresolved.distributed)
    config, _ = _load_config(args, **forced)
    run_dir = layout.run_dir(config)
    if run_dir.exists() and not run_dir.is_dir():
        raise config_lib.ConfigError(f"common.run_dir = {run_dir} is a file: name a folder for "
                                     "the run (new or one that train wrote)")
    enable_compilation_cache()
    try:
        loop.run(config, progress=not args.no_progress, exit_at_once=True)
    except (checkpoint.CheckpointError, export.ExportError, lock.LockError) as error:
        if config.common.log_level == "debug" and error.__cause__ is not None:
            traceback.print_exception(error.__cause__)  # orbax's or TensorStore's full text
        raise config_lib.ConfigError(str(error)) from None
    except loop.TrainingError as error:
        print(f"cartridge-jax train: error: {error}", file=sys.stderr)
        return 1
    return 0


def _export_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="export a run's latest checkpoint to ONNX for the web page",
        description="Writes model.onnx, params.msgpack, network.json and manifest.json (last) "
        "for the latest checkpoint of RUN_DIR. The configuration is the one the run recorded in "
        "its stats.json; flags given here override it. RUN_DIR may also be an exported model "
        "folder: its network is exported again with this command's export settings (e.g. "
        "--export.simulations for the bot's default), keeping its iteration and step.")
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="a run directory written by train, or an exported model folder")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: RUN_DIR/models/<game>)")
    _add_config_flags(parser, short=())
    parser.set_defaults(run=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from cartridge_jax.model import export, load

    run_dir = epath.Path(args.run_dir)
    if not run_dir.is_dir():
        raise config_lib.ConfigError(f"run directory {run_dir} does not exist: name a folder "
                                     "that `train` wrote (its --run-dir)")
    config = _model_config(args, run_dir)
    if load.model_kind(run_dir) == "export" and not args.out:
        raise config_lib.ConfigError(f"{run_dir} is an exported model: name a new folder for "
                                     "its export with --out")
    enable_compilation_cache()
    try:
        model = load.load_model(run_dir, config)
        out_dir = args.out or layout.model_dir(run_dir, model.game.name)
        manifest = export.export_model(
            model.game, model.network, model.params, model.config.model, out_dir,
            step=model.step, iteration=model.iteration,
            opset=config.export.onnx_opset, ir_version=config.export.onnx_ir_version,
            agent=export.agent_settings(config))
    except (load.ModelError, export.ExportError) as error:
        raise config_lib.ConfigError(str(error)) from None
    print(f"Exported iteration {model.iteration} (step {manifest['step']}) of {run_dir} to "
          f"{out_dir}")
    return 0


def _model_config(args: argparse.Namespace, path: epath.Path) -> config_lib.Config:
    """The configuration the model at `path` plays with (`load.model_config`), under the
    command's flags."""
    from cartridge_jax.model import load

    try:
        return load.model_config(path, config_file=args.config, flags=_given_flags(args))
    except load.ModelError as error:
        raise config_lib.ConfigError(str(error)) from None


def _eval_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval", help="measure a trained model: benchmark positions, a match, or exhaustively",
        description="Evaluates the agent (Gumbel MuZero over the network, without noise) "
        "of a run directory (its latest checkpoint) or an exported model folder.")
    parser.add_argument("--model", required=True, metavar="PATH",
                        help="run directory or exported model folder (with manifest.json)")
    parser.add_argument("--sims", type=int, metavar="N", help="simulations per move (default: "
                        "an exported model's own, from its manifest, else what "
                        "an export would record: export.simulations, or evaluation.simulations "
                        "if that is 0; 0 = the raw network's best move)")
    measure = parser.add_mutually_exclusive_group(required=True)
    measure.add_argument("--positions", metavar="FILE", help="benchmark file: Connect 4 .jsonl "
                         "(Pons) or Othello .obf (FForum), e.g. from cartridge_jax/refdata")
    measure.add_argument("--opponent", metavar="NAME",
                         help="play a match against random, greedy, perfect (TicTacToe), "
                         "mcts-rollout:<sims>, alphabeta:<depth> or a model path (played at "
                         "--sims)")
    measure.add_argument("--exhaustive", action="store_true",
                         help="TicTacToe: share of all reachable positions played optimally")
    parser.add_argument("--games", type=int, metavar="N",
                        help="games of the match (even; default: evaluation.games)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    _add_config_flags(parser, short=("game", "seed"))
    parser.set_defaults(run=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from cartridge_jax.evaluation import measure

    path = epath.Path(args.model)
    config = _model_config(args, path)
    enable_compilation_cache()
    try:
        result = measure.evaluate(
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


def _play_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "play", help="play a trained model in the terminal",
        description="Plays one game against the agent (Gumbel MuZero over the network, without "
        "noise) of a run directory (its latest checkpoint) or an exported model folder. "
        "Type moves by name (TicTacToe b2, Connect 4 column 4, Othello d3 or pass), or undo, "
        "help, quit. Standard input may be a pipe.")
    parser.add_argument("game", metavar="GAME", help=f"one of {', '.join(games.names())}")
    parser.add_argument("--model", required=True, metavar="PATH",
                        help="run directory or exported model folder (with manifest.json)")
    parser.add_argument("--sims", type=int, metavar="N", help="simulations per bot move "
                        "(default: an exported model's own, from its manifest, else "
                        "export.simulations, or evaluation.simulations if that is 0; 0 = the "
                        "raw network's best move)")
    parser.add_argument("--bot-first", action="store_true", help="the bot moves first")
    _add_config_flags(parser, short=("seed",))
    parser.set_defaults(run=_cmd_play)


def _cmd_play(args: argparse.Namespace) -> int:
    from cartridge_jax.play import terminal

    game = games.make(args.game)
    path = epath.Path(args.model)
    config = _model_config(args, path)
    if config.common.game != game.name:
        raise config_lib.ConfigError(f"model {path} plays {config.common.game}, not {game.name}: "
                                     f"play it with `play {config.common.game}`")
    enable_compilation_cache()
    try:
        return terminal.run(config, path, sims=args.sims, bot_first=args.bot_first,
                            ask=terminal.stream_ask(sys.stdin, sys.stdout), out=sys.stdout)
    except ValueError as error:
        raise config_lib.ConfigError(str(error)) from None


def _ship_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ship", help="copy a run's exported model into site/models/<game>/ with a model card",
        description="Copies RUN_DIR/models/<game>/ and its stats.json into the site, checking "
        "each exported file against the sha256 its manifest.json records, runs the game's "
        "strength suite (cartridge_jax.web.ship.SUITES) on it and writes card.json. The folder "
        "is replaced atomically, world-readable, and left as it was when a check fails.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by train")
    parser.add_argument("--dest", metavar="DIR", help="target folder (default: "
                        "site/models/<game>)")
    parser.add_argument("--sims", type=_simulation_counts, metavar="N[,N...]",
                        help="simulations per move the suite runs at (default: the export's "
                        "own, from its manifest, and 128, which every card measures at)")
    parser.add_argument("--trained-with", metavar="COMMAND",
                        help="the training command to record in the card")
    _add_config_flags(parser, short=())
    parser.set_defaults(run=_cmd_ship)


def _cmd_ship(args: argparse.Namespace) -> int:
    from cartridge_jax.model import export
    from cartridge_jax.web import ship, website

    run_dir = epath.Path(args.run_dir)
    if not (run_dir / "stats.json").is_file():
        raise config_lib.ConfigError(f"{run_dir} is not a training run (no stats.json): name a "
                                     "folder that `train` wrote (its --run-dir)")
    config = _run_config(args, run_dir)
    game = config.common.game
    dest = pathlib.Path(args.dest) if args.dest else website.SITE_DIR / "models" / game
    enable_compilation_cache()
    print(f"Shipping {layout.model_dir(run_dir, config.common.game)} to {dest}; strength suite:")
    try:
        card = ship.ship(run_dir, dest, config, sims=args.sims,
                         command=args.trained_with or f"python scripts/train.py --game {game}")
    except (export.ExportError, stats.StatsError, ValueError) as error:
        raise config_lib.ConfigError(str(error)) from None
    except OSError as error:  # e.g. a read-only or full site folder; the old model stays
        raise config_lib.ConfigError(f"cannot ship to {dest}: {error}") from None
    print(f"Wrote {dest} (card.json: {len(card['evaluation'])} measures)")
    return 0


def _run_config(args: argparse.Namespace, run_dir: epath.Path) -> config_lib.Config:
    """The configuration a run was trained with: its stats.json's, under any flags given.

    A run directory without stats.json gets the usual layers (file, environment, flags).
    """
    return layout.recorded_config(run_dir, config_file=args.config, flags=_given_flags(args))


def _ladder_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "ladder", help="rate models and baseline opponents together on an Elo scale",
        description="Plays matches among models (--models, --snapshots) and named opponents "
        "(--opponents; random, the anchor at Elo 0, is always in): every pair of opponents, "
        "every model against every opponent and each model against the next one (or, with "
        "--round-robin, every pair). Prints an Elo table (maximum likelihood, draws as half "
        "wins) and writes it with every match's W/D/L to --json-out.")
    parser.add_argument("--models", nargs="*", default=[], metavar="PATH",
                        help="run directories, exported model folders or snapshot files")
    parser.add_argument("--snapshots", nargs="*", default=[], metavar="RUN_DIR",
                        help="rate every parameter snapshot of these runs (oldest first)")
    parser.add_argument("--opponents", default="random,greedy", metavar="NAMES",
                        help="comma-separated opponent names, e.g. "
                        "random,greedy,alphabeta:3,mcts-rollout:200 (default: random,greedy)")
    parser.add_argument("--games", type=int, metavar="N",
                        help="games per match (even; default: evaluation.games)")
    parser.add_argument("--sims", type=int, metavar="N", help="simulations per move of the "
                        "models (default: evaluation.simulations)")
    parser.add_argument("--round-robin", action="store_true", help="play every pair")
    parser.add_argument("--json-out", metavar="FILE", help="write the ratings and matches")
    _add_config_flags(parser, short=("game", "seed"))
    parser.set_defaults(run=_cmd_ladder)


def _cmd_ladder(args: argparse.Namespace) -> int:
    import jax

    from cartridge_jax.evaluation import ladder

    config, _ = _load_config(args)
    game = games.make(config.common.game)
    sims = config.evaluation.simulations if args.sims is None else args.sims
    enable_compilation_cache()
    try:
        result = ladder.rate(
            game, opponents=args.opponents.split(","),
            models=ladder.models_to_rate(args.models, args.snapshots),
            simulations=sims,
            games=config.evaluation.games if args.games is None else args.games,
            key=jax.random.key(config.common.seed), round_robin=args.round_robin,
            progress=lambda line: print(line, file=sys.stderr, flush=True))
    except ValueError as error:
        raise config_lib.ConfigError(str(error)) from None
    print(ladder.ratings_table(result))
    if args.json_out:
        ladder.write_json(args.json_out, result)
    return 0


def enable_compilation_cache() -> None:
    """Keeps compiled programs on disk, so a rerun of the same configuration starts fast."""
    import jax

    cache = os.environ.get(config_lib.JAX_CACHE_DIR_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "cartridge_jax", "jax")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def _serve_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve", help="serve the web site (play and stats pages) with a run's models",
        description="Serves site/ over HTTP with RUN_DIR's exported models and stats.json in "
        "place of the shipped ones; an open page picks up each new export within seconds.")
    parser.add_argument("run_dir", metavar="RUN_DIR", nargs="?",
                        help="a run directory written by train (default: the shipped models)")
    parser.add_argument("--port", type=_port, default=8000,
                        help="port (default: 8000; 0: any free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.set_defaults(run=_cmd_serve)


def _simulation_counts(text: str) -> tuple[int, ...]:
    """Comma-separated simulation counts for argparse (e.g. "128,512"), each 0 or more."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of simulation counts: use "
                                         "numbers separated by commas, e.g. 128,512") from None
    if min(counts) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: simulation counts are 0 (the raw "
                                         "network) or more")
    return counts


def _port(text: str) -> int:
    """A TCP port number for argparse: 0 (any free one) to 65535, else a one-line usage error."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 1 to 65535 (e.g. 8000), "
                                         "or 0 for any free one")
    return port


def _cmd_serve(args: argparse.Namespace) -> int:
    from cartridge_jax.web import website

    run_dir = None if args.run_dir is None else pathlib.Path(args.run_dir)
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise config_lib.ConfigError(f"{run_dir} is a file, not a run directory: name the "
                                     "folder that `train` wrote (its --run-dir)")
    try:
        server = website.make_server(run_dir, host=args.host, port=args.port)
    except website.SiteError as error:
        raise config_lib.ConfigError(str(error)) from None
    models = "its shipped models" if run_dir is None else f"the models of {run_dir}"
    print(f"Serving {website.SITE_DIR} with {models} at {website.server_url(server)} "
          "(Ctrl-C stops)", flush=True)
    with server:
        server.serve_forever()
    return 0


def _bench_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "bench", help="measure throughput: random play and self-play next to pgx, the learner, "
        "a training iteration", description="Runs the benchmark suites and writes JSON, a "
        "markdown table and a plot (see docs/performance.md). Configuration flags shape the "
        "iteration suite's configuration, as for train.")
    from cartridge_jax import bench

    bench.add_arguments(parser)
    _add_config_flags(parser, short=("preset",))
    parser.set_defaults(run=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from cartridge_jax import bench

    # The iteration suite measures what `train --game GAME` with the same flags would run.
    bench.main(args, load_config=lambda game: _load_config(args, **{"common.game": game})[0])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cartridge-jax", description="AlphaZero for board games in JAX.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)
    for add_parser in (_config_parser, _perft_parser, _demo_parser, _train_parser,
                       _export_parser, _ship_parser, _eval_parser, _serve_parser, _play_parser,
                       _ladder_parser, _bench_parser):
        add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (config_lib.ConfigError, games.UnknownGameError, stats.StatsError) as error:
        print(f"cartridge-jax {args.command}: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(f"cartridge-jax {args.command}: interrupted", file=sys.stderr)
        return 130
