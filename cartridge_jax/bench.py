"""Throughput benchmarks, written as JSON and a markdown table (`scripts/bench.py`).

Random play: every game of a batch plays uniformly random legal moves and restarts when it ends
(auto-reset), `steps` moves per game inside one jitted `lax.scan`. The same loop runs over pgx's
implementation of each game in the same process, so the ratio ours/pgx compares like with like.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import pathlib
import platform
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp

from cartridge_jax import games
from cartridge_jax.games.base import where_batched
from cartridge_jax.io import atomic_write_text

PGX_IDS = {"tictactoe": "tic_tac_toe", "connect4": "connect_four", "othello": "othello"}


def _random_play(init: Callable, step: Callable, batch_size: int, steps: int):
    """A jitted function (key) -> final states of `batch_size` auto-resetting random games."""

    def run(key):
        fresh = jax.vmap(init)(jax.random.split(key, batch_size))

        def move(carry, key):
            state = carry
            # A uniform legal move as the argmax of random bits over legal moves: several times
            # cheaper than jax.random.categorical on CPU, which would otherwise dominate.
            noise = jax.random.bits(key, state.legal_action_mask.shape, jnp.uint32) >> 1
            actions = jnp.argmax(jnp.where(state.legal_action_mask, noise.astype(jnp.int32), -1), -1)
            state = jax.vmap(step)(state, actions)
            return where_batched(state.terminated, fresh, state), None

        final, _ = jax.lax.scan(move, fresh, jax.random.split(key, steps))
        return final

    return jax.jit(run)


def _time_steps_per_s(run, batch_size: int, steps: int, repeats: int) -> dict[str, float]:
    key = jax.random.key(0)
    started = time.perf_counter()
    jax.block_until_ready(run(key))  # compiles
    compile_s = time.perf_counter() - started
    best = float("inf")
    for repeat in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(run(jax.random.key(repeat + 1)))
        best = min(best, time.perf_counter() - started)
    return {"steps_per_s": batch_size * steps / best, "seconds": best, "compile_s": compile_s}


def _pgx_functions(name: str):
    """pgx's (init, step) for our game `name`, or None when pgx is not installed."""
    try:
        import pgx
    except ImportError:
        return None
    env = pgx.make(PGX_IDS[name])
    return env.init, env.step


def random_play(game_names: list[str], batch_sizes: list[int], steps: int, repeats: int,
                with_pgx: bool) -> list[dict[str, Any]]:
    rows = []
    for name in game_names:
        game = games.make(name)
        pgx_fns = _pgx_functions(name) if with_pgx else None
        for batch_size in batch_sizes:
            ours = _time_steps_per_s(_random_play(game.init, game.step, batch_size, steps),
                                     batch_size, steps, repeats)
            row = {"game": name, "batch_size": batch_size, "steps": steps,
                   "ours_steps_per_s": ours["steps_per_s"], "ours_compile_s": ours["compile_s"]}
            if pgx_fns is not None:
                theirs = _time_steps_per_s(_random_play(*pgx_fns, batch_size, steps),
                                           batch_size, steps, repeats)
                row["pgx_steps_per_s"] = theirs["steps_per_s"]
                row["ours_over_pgx"] = ours["steps_per_s"] / theirs["steps_per_s"]
            rows.append(row)
            print(_row_text(row), flush=True)
    return rows


def _row_text(row: dict[str, Any]) -> str:
    text = f"{row['game']:>10} batch {row['batch_size']:>5}: ours {row['ours_steps_per_s']:>12,.0f} steps/s"
    if "pgx_steps_per_s" in row:
        text += f", pgx {row['pgx_steps_per_s']:>12,.0f} steps/s, ours/pgx {row['ours_over_pgx']:.2f}"
    return text


def device_info() -> dict[str, Any]:
    device = jax.devices()[0]
    info = {
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "jax_version": jax.__version__,
        "python": platform.python_version(),
        "cpu": _cpu_model(),
    }
    try:
        info["pgx_version"] = importlib.metadata.version("pgx")
    except importlib.metadata.PackageNotFoundError:
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| game | batch | ours steps/s | pgx steps/s | ours/pgx |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        pgx = f"{row['pgx_steps_per_s']:,.0f}" if "pgx_steps_per_s" in row else "-"
        ratio = f"{row['ours_over_pgx']:.2f}" if "ours_over_pgx" in row else "-"
        lines.append(f"| {row['game']} | {row['batch_size']} | {row['ours_steps_per_s']:,.0f} "
                     f"| {pgx} | {ratio} |")
    return "\n".join(lines)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers")
    if any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be at least 1")
    return values


def _game_list(text: str) -> list[str]:
    names = text.split(",")
    unknown = [name for name in names if name not in games.names()]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown game {unknown[0]!r}: available games are {', '.join(games.names())}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--games", type=_game_list, default=games.names(),
                        help="comma-separated games (default: all)")
    parser.add_argument("--batch-sizes", type=_int_list, default=[64, 256, 1024, 4096, 8192],
                        help="comma-separated batch sizes (default: 64,256,1024,4096,8192)")
    parser.add_argument("--steps", type=int, default=100, help="moves per game per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--no-pgx", action="store_true", help="skip the pgx comparison")
    parser.add_argument("--out", default="bench_results/bench.json",
                        help="JSON output; a .md table is written beside it")


def main(args: argparse.Namespace) -> dict[str, Any]:
    info = device_info()
    print(f"# {info['platform']} {info['device_kind']} ({info['cpu']}), jax {info['jax_version']}")
    rows = random_play(args.games, args.batch_sizes, args.steps, args.repeats,
                       with_pgx=not args.no_pgx)
    result = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": info,
        "random_play": rows,
    }
    out = pathlib.Path(args.out)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    table = markdown_table(rows)
    atomic_write_text(out.with_suffix(".md"), f"# Random play, steps/s\n\n{table}\n")
    print(f"\n{table}\n\nwrote {out} and {out.with_suffix('.md')}")
    return result
