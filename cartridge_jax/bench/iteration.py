"""Suite "iteration": one training iteration of a configuration, phase by phase.

The trainer's phase functions are called as the training loop calls them (chunks, one host check
per chunk), self-play and training compiled ahead of time so that compilation is timed apart from
the work; the evaluation is the loop's own (matches against each opponent and the best network,
then the benchmark positions). Export and checkpoint write into a temporary folder. Peak memory
is the process's so far (earlier suites included); bytes per position are those of the replay
buffer's arrays.
"""

from __future__ import annotations

import pathlib
import tempfile
import time
from typing import Any

import jax

from cartridge_jax.bench import device
from cartridge_jax.config import Config
from cartridge_jax.evaluation.evaluator import Best, Evaluator
from cartridge_jax.model import nets
from cartridge_jax.run import checkpoint
from cartridge_jax.training import loop, replay
from cartridge_jax.training.trainer import Trainer, selfplay_phase, train_phase

PHASES = ("setup", "selfplay", "train", "evaluate", "export", "checkpoint")


def _compiled(jitted, *args):
    """(`jitted` compiled for `args`, seconds the lowering and compilation took)."""
    started = time.perf_counter()
    executable = jitted.lower(*args).compile()
    return executable, time.perf_counter() - started


def replay_bytes_per_position(buffer: replay.ReplayBuffer) -> float:
    per_slot = sum(leaf.nbytes for leaf in jax.tree.leaves(buffer) if leaf.ndim >= 2)
    return per_slot / buffer.capacity


def _read_loss(losses, _train_state) -> bool:
    """As the loop does after each training chunk: the loss comes to the host (to be checked)."""
    float(losses.total)
    return False


def measure_one(config: Config, work_dir: pathlib.Path) -> dict[str, Any]:
    trainer = Trainer(config)
    evaluator = Evaluator(config, trainer.game, trainer.network.apply, trainer.mesh)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    state = jax.block_until_ready(trainer.initial_state())
    seconds["setup"] = time.perf_counter() - started
    initial_params = jax.device_get(state.train_state.params)  # training donates the buffers
    selfplay_key, train_key, eval_key = jax.random.split(state.key, 3)

    compile_s = {}
    selfplay, compile_s["selfplay"] = _compiled(
        trainer.selfplay, state.train_state.params, state.games, state.buffer, selfplay_key)
    train, compile_s["train"] = _compiled(trainer.train, state.train_state, state.buffer,
                                          train_key, 0.0)

    started = time.perf_counter()
    state, played = selfplay_phase(trainer, state, selfplay_key, step=selfplay)
    seconds["selfplay"] = time.perf_counter() - started

    started = time.perf_counter()
    state, trained = train_phase(trainer, state, train_key, step=train, after_chunk=_read_loss)
    seconds["train"] = time.perf_counter() - started
    train_state = state.train_state

    # The evaluation compiles inside (one program per agent pairing), so it runs twice: the
    # first run less the second is its compilation.
    best = Best(initial_params, 0)  # the loop's first "best": the initial network
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        evaluator.evaluate(train_state.params, best, 1, int(train_state.step), eval_key)
        runs.append(time.perf_counter() - started)
    seconds["evaluate"], compile_s["evaluate"] = runs[1], max(runs[0] - runs[1], 0.0)

    host_params = jax.device_get(train_state.params)
    _, seconds["export"] = loop.export_network(trainer, host_params, int(train_state.step), 1,
                                               work_dir)

    started = time.perf_counter()
    (work_dir / "checkpoints").mkdir()
    with checkpoint.Checkpoints(work_dir / "checkpoints", max_to_keep=1) as saved:
        saved.save(1, state, {**trainer.identity(initial_params), "iteration": 1})
    seconds["checkpoint"] = time.perf_counter() - started

    steps = trained.steps
    buffer = state.buffer
    return {
        "game": trainer.game.name,
        "network": nets.describe(trainer.network, initial_params),
        "games": config.selfplay.games, "moves": config.selfplay.moves_per_iteration,
        "simulations": config.mcts.simulations, "train_steps": steps,
        "batch_size": config.training.batch_size, "eval_games": evaluator.games,
        "eval_simulations": config.evaluation.simulations,
        "opponents": list(evaluator.opponent_names),
        "benchmarks": list(config.evaluation.benchmarks),
        "seconds": seconds,
        "compile_s": compile_s,
        "total_s": sum(seconds.values()) + sum(compile_s.values()),
        "positions": played.positions,
        "positions_per_s": played.positions / seconds["selfplay"],
        "train_steps_per_s": steps / seconds["train"] if steps else None,
        "replay_capacity": buffer.capacity,
        "replay_bytes_per_position": replay_bytes_per_position(buffer),
        "peak_host_memory_mb": device.peak_host_memory_mb(),
        "peak_device_memory_mb": device.peak_device_memory_mb(),
    }


def measure(configs: list[Config]) -> list[dict[str, Any]]:
    rows = []
    for config in configs:
        with tempfile.TemporaryDirectory(prefix="cartridge-bench-") as work_dir:
            row = measure_one(config, pathlib.Path(work_dir))
        rows.append(row)
        phases = ", ".join(f"{name} {row['seconds'][name]:.1f} s" for name in PHASES)
        compiles = ", ".join(f"{name} {value:.1f} s" for name, value in row["compile_s"].items())
        print(f"{row['game']:>10} iteration ({row['network']}): {phases}; compile {compiles}",
              flush=True)
    return rows


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The nested timings flattened for the markdown table."""
    return [{**row, **{f"{name}_s": row["seconds"][name] for name in PHASES},
             "compile_total_s": sum(row["compile_s"].values())} for row in rows]


TABLE = (("game", "game", "{}"), ("network", "network", "{}"),
         *((f"{name} s", f"{name}_s", "{:.1f}") for name in PHASES),
         ("compile s", "compile_total_s", "{:.1f}"), ("positions/s", "positions_per_s", "{:,.0f}"),
         ("peak host MiB", "peak_host_memory_mb", "{:,.0f}"),
         ("replay B/position", "replay_bytes_per_position", "{:.0f}"))
