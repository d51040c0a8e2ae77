"""The training loop: iterations of self-play -> train -> evaluate, resumable.

Each phase is compiled once per configuration and run in a few jitted chunks; the host only
updates progress bars, checks for a stop request and a finite loss between chunks. The phases
run over every device (`trainer.Trainer.mesh`, see parallel.py): self-play and the replay buffer
split by games, training batches split, everything else replicated.

A run directory holds orbax checkpoints (everything needed to continue: params, optimizer,
replay buffer, self-play games, RNG), `stats.json`, parameter snapshots in `snapshots/` (see
checkpoint.py) and, with `export.enabled`, the network exported at each checkpoint to
`models/<game>/` (see export.py); rerunning the same command resumes.

Every `evaluation.interval` iterations the network plays `evaluation.games` games against each
configured opponent and against the best network so far ("best"; at first the initial network),
and is measured on the `evaluation.benchmarks` position sets. A score of at least
`evaluation.win_threshold` against the best makes it the new best: kept in memory for the next
evaluations and on disk as its snapshot, named by stats.json's `best_model`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import math
import signal
import sys
import time
import uuid
from typing import TextIO

import jax
from etils import epath
from tqdm import tqdm

from cartridge_jax import config as config_lib
from cartridge_jax import parallel
from cartridge_jax.evaluation.evaluator import Best, Evaluator
from cartridge_jax.model import export as export_lib
from cartridge_jax.model import nets
from cartridge_jax.run import checkpoint as checkpoint_lib
from cartridge_jax.run import layout
from cartridge_jax.run import stats as stats_lib
from cartridge_jax.training import replay
from cartridge_jax.training import trainer as trainer_lib


class TrainingError(Exception):
    """The run cannot go on (e.g. the loss became NaN); the message is one line for people."""


class _StopRequest:
    """Turns the first Ctrl-C into a request to save and stop; a second one interrupts.

    With several processes, one stops when any was asked to (`agreed`), so that all take the
    same steps.
    """

    def __init__(self):
        self.requested = False

    def agreed(self) -> bool:
        """Whether any process was asked to stop: a collective, called by all at one point."""
        return parallel.any_process(self.requested)

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc_info):
        signal.signal(signal.SIGINT, self._previous)


@dataclasses.dataclass
class _Counters:
    positions_generated: int = 0
    games_played: int = 0
    samples_seen: int = 0
    wall_time_s: float = 0.0


def run(
    config: config_lib.Config, *, out: TextIO | None = None, progress: bool = True
) -> stats_lib.Stats:
    """Trains until `training.iterations` iterations are done, resuming from the run directory.

    Raises TrainingError (non-finite loss), checkpoint.CheckpointError (a checkpoint that
    belongs to another game or network) and export.ExportError (an unwritable opset/IR pair).
    Progress goes to `out` (default: standard error). `common.log_level`: "debug" also logs
    every JAX compilation (to spot recompiles), "info" shows progress bars and one summary line
    per iteration, "warning" and "error" only the start, stop and problems.

    With several processes (parallel.py), every one calls this with the same configuration;
    process 0 alone prints and writes stats.json, snapshots and exports, while checkpoints are
    written by all (orbax writes each process's shards).
    """
    main = parallel.is_main_process()
    out = (out or sys.stderr) if main else io.StringIO()  # the other processes keep quiet
    if config.common.log_level == "debug":
        jax.config.update("jax_log_compiles", True)
    progress = progress and config.common.log_level in ("debug", "info")
    trainer = trainer_lib.Trainer(config)
    evaluator = Evaluator(config, trainer.game, trainer.network.apply, trainer.mesh)
    run_dir = layout.run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)  # by every process: orbax needs it on each host
    state = trainer.initial_state()
    identity = trainer.identity(state.train_state.params)
    if config.evaluation.interval:  # a bad opponent or benchmark stops the run before it starts
        evaluator.check()
    checkpoints = checkpoint_lib.Checkpoints(
        layout.checkpoints_dir(run_dir), max_to_keep=config.training.max_checkpoints
    )
    carried = _resume(trainer, checkpoints, state, identity, run_dir, out)
    done, state = carried.last_saved, carried.state
    if done >= config.training.iterations:
        print(f"{run_dir} already has {done} iterations; raise --training.iterations to train "
              "more.", file=out)
        checkpoints.close()
        return carried.stats
    network = nets.describe(trainer.network, state.train_state.params)
    print(f"Training {trainer.game.display_name}: {network}, "
          f"{config.selfplay.games} games x {config.mcts.simulations} simulations "
          f"({config.mcts.search}) on {_devices(trainer.mesh)}, run directory {run_dir}",
          file=out)

    exporter = _Exporter(trainer, run_dir, out) if config.export.enabled and main else None
    try:
        with _StopRequest() as stop:
            context = _Context(trainer, evaluator, stop, out, progress)
            for iteration in range(done + 1, config.training.iterations + 1):
                carried, cut_short = _iteration(context, carried, iteration)
                carried = _save(config, carried, iteration, cut_short, checkpoints, identity,
                                run_dir, exporter)
                if cut_short:
                    print(f"Stopped: saved iteration {iteration} in {run_dir}; rerun the same "
                          "command to continue.", file=out)
                    break
        if exporter:
            exporter.finish()
    finally:
        if exporter:
            exporter.close()
        checkpoints.close()
    return carried.stats


def _resume(trainer: trainer_lib.Trainer, checkpoints: checkpoint_lib.Checkpoints,
            state: trainer_lib.RunState, identity: dict, run_dir: epath.Path,
            out: TextIO) -> _Carried:
    """Where the run stands: its latest checkpoint and stats.json, or a new run from `state`
    (the initial state, also the template every checkpoint is restored into)."""
    initial_params = jax.device_get(state.train_state.params)
    stats_path = layout.stats_path(run_dir)
    done = checkpoints.latest_iteration() or 0
    counters, stats = _Counters(), None
    if done:
        state, meta = checkpoints.restore(state, expected_meta=identity)
        counters = _Counters(**meta["counters"])
        stats = stats_lib.read_stats(stats_path) if stats_path.exists() else None
        print(f"Resuming {run_dir} after iteration {done} (step {int(state.train_state.step)})",
              file=out)
    if stats is None:
        stats = stats_lib.new_stats(trainer.game.name, uuid.uuid4().hex[:12],
                                    trainer.config.model_dump(mode="json"))
    best = _resumed_best(stats, done, run_dir, initial_params, state, out)
    return _Carried(state, stats, counters, best, last_saved=done)


def _save(config: config_lib.Config, carried: _Carried, iteration: int, cut_short: bool,
          checkpoints: checkpoint_lib.Checkpoints, identity: dict, run_dir: epath.Path,
          exporter: _Exporter | None) -> _Carried:
    """Snapshot, stats.json and, when due (every checkpoint_interval, the last iteration, a
    stop), the checkpoint of `iteration` and its export. Files other than checkpoints are the
    main process's to write."""
    main = parallel.is_main_process()
    state, stats = carried.state, carried.stats
    final = iteration == config.training.iterations
    save = cut_short or final or iteration % config.training.checkpoint_interval == 0
    snapshots = config.training.snapshot_interval
    if main and (carried.best.iteration == iteration
                 or (snapshots and iteration % snapshots == 0)):
        checkpoint_lib.save_snapshot(run_dir, iteration, state.train_state.params)
    if save:
        stats = stats.model_copy(update={"last_checkpoint": iteration})
    # Stats first: a run that dies between the two redoes this iteration on resume, and
    # record_iteration then replaces its history point instead of leaving a gap.
    if main:
        stats_lib.write_stats(layout.stats_path(run_dir), stats)
    if not save:
        return dataclasses.replace(carried, stats=stats)
    checkpoints.save(iteration, state, {**identity, "iteration": iteration,
                                        "counters": dataclasses.asdict(carried.counters)})
    if exporter:
        exporter.submit(state, iteration)
    return dataclasses.replace(carried, stats=stats, last_saved=iteration)


def _devices(mesh) -> str:
    """E.g. "1 cpu device" or "8 gpu devices in 2 processes"."""
    count = mesh.devices.size
    text = f"{count} {mesh.devices.flat[0].platform} device{'s' if count > 1 else ''}"
    processes = jax.process_count()
    return text + (f" in {processes} processes" if processes > 1 else "")


def _resumed_best(stats, done, run_dir, initial_params, state, out) -> Best:
    """The best network as of iteration `done`: the last promoted one up to it (its snapshot),
    else the initial network."""
    promoted = [e.iteration for e in stats.eval_history
                if e.became_new_best and e.iteration <= done]
    if not promoted:
        return Best(initial_params, 0)
    path = checkpoint_lib.snapshot_path(run_dir, promoted[-1])
    try:
        return Best(checkpoint_lib.load_snapshot(path, initial_params), promoted[-1])
    except checkpoint_lib.CheckpointError as error:
        print(f"Warning: the best network's snapshot is unusable ({error}); the network of "
              f"iteration {done} stands in for it", file=out)
        return Best(jax.device_get(state.train_state.params), done)


class _Exporter:
    """Exports checkpoints on a worker thread, so the next iteration overlaps the export (the
    first jax2onnx export in a process costs ~10 s of start-up). One export at a time; an
    export's error surfaces at the next `submit` or at `finish`."""

    def __init__(self, trainer: trainer_lib.Trainer, run_dir: epath.Path, out: TextIO):
        self._trainer, self._run_dir, self._out = trainer, run_dir, out
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="export")
        self._pending: concurrent.futures.Future | None = None
        self._announced = False

    def submit(self, state: trainer_lib.RunState, iteration: int) -> None:
        self._collect()
        # A host copy: the next training chunk donates (frees) the device buffers.
        params = jax.device_get(state.train_state.params)
        step = int(state.train_state.step)
        self._pending = self._pool.submit(
            export_network, self._trainer, params, step, iteration, self._run_dir)

    def finish(self) -> None:
        """Waits for the last export; raises its error, if any."""
        self._collect()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _collect(self) -> None:
        if self._pending is None:
            return
        folder, seconds = self._pending.result()
        self._pending = None
        if not self._announced:  # one line per run: later exports replace these files
            print(f"Exported the network to {folder} in {seconds:.1f} s; updated at each "
                  "checkpoint", file=self._out)
            self._announced = True


def export_network(trainer, params, step, iteration, run_dir) -> tuple[epath.Path, float]:
    """Exports `params` to <run_dir>/models/<game>/: (that folder, seconds taken)."""
    started = time.perf_counter()
    folder = layout.model_dir(run_dir, trainer.game.name)
    export_lib.export_model(
        trainer.game, trainer.network, params, trainer.config.model, folder,
        step=step, iteration=iteration,
        opset=trainer.config.export.onnx_opset, ir_version=trainer.config.export.onnx_ir_version,
        agent=export_lib.agent_settings(trainer.config),
    )
    return folder, time.perf_counter() - started


@dataclasses.dataclass(frozen=True)
class _Context:
    """What every iteration of a run shares."""

    trainer: trainer_lib.Trainer
    evaluator: Evaluator
    stop: _StopRequest
    out: TextIO
    progress: bool

    def bar(self, total: int, desc: str, unit: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit=unit, file=self.out, leave=False,
                    disable=not self.progress, dynamic_ncols=True)


@dataclasses.dataclass(frozen=True)
class _Carried:
    """What one iteration hands to the next."""

    state: trainer_lib.RunState
    stats: stats_lib.Stats
    counters: _Counters
    best: Best
    last_saved: int  # the newest checkpoint's iteration (0: none)


def _iteration(context: _Context, carried: _Carried, iteration: int) -> tuple[_Carried, bool]:
    """One iteration: self-play, training, evaluation when due, recorded in the stats.
    Returns what the next one starts from, and whether a stop request cut this one short."""
    config = context.trainer.config
    started = time.perf_counter()
    key, selfplay_key, train_key, eval_key = jax.random.split(carried.state.key, 4)
    state = carried.state.replace(key=key)
    state, played, trained, selfplay_s = _play_and_train(
        context, state, selfplay_key, train_key, iteration, carried.last_saved)
    stopping = played.stopped or trained.stopped

    step = int(state.train_state.step)
    entries, points, best = [], [], carried.best
    interval = config.evaluation.interval
    final = iteration == config.training.iterations
    if interval and (iteration % interval == 0 or final) and not stopping:
        with context.bar(context.evaluator.tests, f"{iteration} evaluate", "test") as pbar:
            entries, points, best = context.evaluator.evaluate(
                state.train_state.params, best, iteration, step, eval_key,
                after_test=lambda: pbar.update(1))

    counters = _Counters(
        positions_generated=carried.counters.positions_generated + played.positions,
        games_played=carried.counters.games_played + played.games_finished,
        samples_seen=carried.counters.samples_seen + trained.steps * config.training.batch_size,
        wall_time_s=carried.counters.wall_time_s + time.perf_counter() - started,
    )
    stats = _record(context, carried.stats, state, iteration, counters, played, trained,
                    selfplay_s, entries, points)
    return dataclasses.replace(carried, state=state, stats=stats, counters=counters,
                               best=best), stopping


def _play_and_train(context: _Context, state, selfplay_key, train_key, iteration: int,
                    last_saved: int):
    """(state, self-play result, training result, self-play seconds), with progress bars; a
    stop request ends either phase early, and a non-finite loss raises TrainingError."""
    trainer, config = context.trainer, context.trainer.config
    started = time.perf_counter()
    with context.bar(config.selfplay.moves_per_iteration, f"{iteration} self-play",
                     "move") as pbar:
        def after_moves(_moves_done):
            pbar.update(trainer.selfplay_chunk)
            return context.stop.agreed()

        state, played = trainer_lib.selfplay_phase(trainer, state, selfplay_key,
                                                   after_chunk=after_moves)
    selfplay_s = time.perf_counter() - started
    if played.stopped:
        return state, played, trainer_lib.TrainResult([], 0, False), selfplay_s

    with context.bar(config.training.steps_per_iteration, f"{iteration} train", "step") as pbar:
        def after_steps(losses, train_state):
            total = float(losses.total)
            if not math.isfinite(total):
                raise TrainingError(
                    f"the loss became {total} at step {int(train_state.step)} (iteration "
                    f"{iteration}); stopped without saving it, the last good checkpoint "
                    f"(iteration {last_saved}) is kept: lower --training.learning_rate or "
                    "--training.grad_clip_norm")
            pbar.update(trainer.train_chunk)
            return context.stop.agreed()

        state, trained = trainer_lib.train_phase(trainer, state, train_key,
                                                 after_chunk=after_steps)
    return state, played, trained, selfplay_s


def _record(context: _Context, stats, state, iteration, counters, played, trained, selfplay_s,
            entries, points) -> stats_lib.Stats:
    """The iteration in stats.json's history (and its evaluation, if any); one summary line."""
    trainer, config = context.trainer, context.trainer.config
    step = int(state.train_state.step)
    mean_losses = (
        {field: float(sum(getattr(l, field) for l in trained.losses) / len(trained.losses))
         for field in ("total", "policy", "value")}
        if trained.losses else {"total": None, "policy": None, "value": None}
    )
    learning_rate = float(trainer.schedule(max(step - 1, 0)))
    positions_per_s, games_per_s = played.positions / selfplay_s, played.games_finished / selfplay_s
    stats = stats_lib.record_iteration(
        stats, step=step, iteration=iteration, losses=mean_losses, learning_rate=learning_rate,
        throughput={"positions_per_s": positions_per_s, "games_per_s": games_per_s,
                    "train_steps_per_s": None},
        replay_size=int(replay.size(state.buffer)), samples_seen=counters.samples_seen,
        positions_generated=counters.positions_generated, games_played=counters.games_played,
        wall_time_s=counters.wall_time_s, replay_capacity=state.buffer.capacity,
    )
    if entries:
        stats = stats_lib.record_eval(stats, entries)
        stats = stats_lib.record_benchmarks(stats, points)
    if config.common.log_level in ("debug", "info"):
        tqdm.write(_summary_line(iteration, config.training.iterations, step, mean_losses,
                                 learning_rate, positions_per_s, games_per_s,
                                 entries, points, counters.wall_time_s), file=context.out)
    return stats


def _summary_line(iteration, iterations, step, losses, learning_rate, positions_per_s,
                  games_per_s, entries, points, wall_time_s) -> str:
    parts = [f"iter {iteration}/{iterations}", f"step {step}"]
    if losses["total"] is not None:
        parts.append(f"loss {losses['total']:.3f} (policy {losses['policy']:.3f}, "
                     f"value {losses['value']:.3f})")
    parts.append(f"lr {learning_rate:.1e}")
    parts.append(f"{positions_per_s:,.0f} pos/s, {games_per_s:,.0f} games/s")
    for entry in entries:
        promoted = " new best" if entry.became_new_best else ""
        parts.append(f"vs {entry.opponent} W/D/L {entry.wins}/{entry.draws}/{entry.losses}"
                     f"{promoted}")
    shown = {}  # the first measure of each benchmark set, e.g. its mistake rate
    for point in points:
        shown.setdefault(point.name, point)
    values = {(point.name, point.metric): point.value for point in points}
    for point in shown.values():
        if point.value is not None:
            raw = values.get((point.name, f"raw_{point.metric}"))
            raw_text = f" (raw {raw:.3f})" if raw is not None else ""
            parts.append(f"{point.name.split('/')[-1]} {point.metric} {point.value:.3f}{raw_text}")
    parts.append(f"{wall_time_s:.1f} s")
    return " | ".join(parts)
