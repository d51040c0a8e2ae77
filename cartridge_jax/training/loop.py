"""The training loop: iterations of self-play -> train -> evaluate, resumable.

Each phase is compiled once per configuration and run in a few jitted chunks; the host only
updates progress bars, checks for a stop request and a finite loss between chunks. The phases
run over every device (`trainer.Trainer.mesh`, see parallel.py): self-play and the replay buffer
split by games, training batches split, everything else replicated.

A run directory holds orbax checkpoints (everything needed to continue: params, optimizer,
replay buffer, self-play games, RNG), `stats.json`, parameter snapshots in `snapshots/` (see
checkpoint.py), a lock (`train.lock`: one trainer per directory) and, with `export.enabled`, the
exported network in `models/<game>/` (see export.py); rerunning the same command resumes.

Nothing completed is lost. Every iteration (`training.checkpoint_interval`) is checkpointed
asynchronously: the next iteration runs while orbax writes. The iteration's stats.json and its
summary line wait until its checkpoint is committed, so neither ever runs ahead of what a resume
finds. A stop (Ctrl-C, SIGTERM, `training.time_budget_s`) never saves part of an iteration: a
signal drops the iteration in progress, waits for the save in flight and exits.

Every `evaluation.interval` iterations the network plays `evaluation.games` games against each
configured opponent and against the best network so far ("best"; at first the initial network),
and is measured on the `evaluation.benchmarks` position sets. A score of at least
`evaluation.win_threshold` against the best makes it the new best: kept in memory for the next
evaluations and on disk as its snapshot, named by stats.json's `best_model`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import io
import math
import os
import signal
import sys
import threading
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
from cartridge_jax.run import faults, layout
from cartridge_jax.run import stats as stats_lib
from cartridge_jax.run.lock import RunLock
from cartridge_jax.training import learner, replay
from cartridge_jax.training import trainer as trainer_lib


class TrainingError(Exception):
    """The run cannot go on (e.g. the loss became NaN); the message is one line for people."""


# The exit status of a second Ctrl-C: 128 + SIGINT, as shells report a process SIGINT ended.
INTERRUPTED_STATUS = 130


class _Stops:
    """Stop requests from signals. The first Ctrl-C or SIGTERM asks the run to drop the
    iteration in progress and to stop once the save in flight is committed; a second Ctrl-C
    quits at once: `os._exit(INTERRUPTED_STATUS)` with `exit_at_once`, else KeyboardInterrupt.

    Both handlers are installed explicitly: a process started in the background by a
    non-interactive shell begins with SIGINT ignored, and SIGTERM (a scheduler's or a container's
    stop) would otherwise kill without waiting for the save. With several processes, one stops
    when any was asked to (`agreed`), so that all take the same steps.
    """

    def __init__(self, out: TextIO, *, exit_at_once: bool):
        self._out, self._exit_at_once = out, exit_at_once
        self.signal_name: str | None = None  # the signal that asked to stop

    def agreed(self) -> bool:
        """Whether any process was asked to stop: a collective, called by all at one point."""
        return parallel.any_process(self.signal_name is not None)

    def __enter__(self) -> _Stops:
        self._previous = {}
        if threading.current_thread() is threading.main_thread():  # else signals cannot reach us
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame) -> None:
        if self.signal_name is not None and number == signal.SIGINT:
            self._quit()
        self.signal_name = signal.Signals(number).name
        again = " (Ctrl-C again to quit at once)" if number == signal.SIGINT else ""
        print(f"{self.signal_name}: stopping; the iteration in progress is dropped{again}",
              file=self._out, flush=True)

    def _quit(self) -> None:
        """A second Ctrl-C. The command line ends the process here and now, as kill -9 would
        (tests/test_faults.py shows that loses no completed iteration): unwinding would wait for
        the save and the export in flight, and orbax logs a traceback for a wait cut short. A
        caller in the same process (a notebook) gets KeyboardInterrupt instead, after the waits.
        """
        if not self._exit_at_once:
            raise KeyboardInterrupt
        print("SIGINT again: quit at once; rerun the same command to continue after the last "
              "iteration saved", file=self._out, flush=True)
        os._exit(INTERRUPTED_STATUS)

    def __exit__(self, *exc_info: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)


class _Dropped(Exception):
    """A stop request came during an evaluation: the iteration is dropped."""


@dataclasses.dataclass
class _Counters:
    positions_generated: int = 0
    games_played: int = 0
    samples_seen: int = 0
    wall_time_s: float = 0.0  # whole iterations, evaluation included
    clock_s: float = 0.0  # self-play and training only: the time budget's clock


def run(
    config: config_lib.Config, *, out: TextIO | None = None, progress: bool = True,
    exit_at_once: bool = False,
) -> stats_lib.Stats:
    """Trains until `training.iterations` iterations are done or `training.time_budget_s` is
    spent, resuming from the run directory.

    Raises TrainingError (non-finite loss), checkpoint.CheckpointError (a checkpoint of another
    game or network, none intact, a checkpoint or snapshot unwritable), stats.StatsError
    (stats.json unreadable or unwritable), lock.LockError (another trainer uses the run
    directory) and export.ExportError (an unwritable opset/IR pair or export folder). A second
    Ctrl-C raises KeyboardInterrupt, or with `exit_at_once` (the command line) ends the process
    at once with status INTERRUPTED_STATUS. Progress goes to `out` (default: standard error).
    `common.log_level`: "debug" also logs every JAX compilation (to spot recompiles), "info"
    shows progress bars and one summary line per iteration, "warning" and "error" only the
    start, stop and problems.

    With several processes (parallel.py), every one calls this with the same configuration;
    process 0 alone prints, holds the lock and writes stats.json, snapshots and exports, while
    checkpoints are written by all (orbax writes each process's shards).
    """
    main = parallel.is_main_process()
    out = (out or sys.stderr) if main else io.StringIO()  # the other processes keep quiet
    if config.common.log_level == "debug":
        jax.config.update("jax_log_compiles", True)
    progress = progress and config.common.log_level in ("debug", "info")
    trainer = trainer_lib.Trainer(config)
    evaluator = Evaluator(config, trainer.game, trainer.network.apply, trainer.mesh)
    run_dir = layout.run_dir(config)
    existed = run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)  # by every process: orbax needs it on each host
    with contextlib.ExitStack() as cleanup:
        if main:
            cleanup.enter_context(RunLock(run_dir))
        state = trainer.initial_state()
        identity = trainer.identity(state.train_state.params)
        if config.evaluation.interval:  # a bad opponent or benchmark stops the run before it starts
            evaluator.check()
        checkpoints = cleanup.enter_context(checkpoint_lib.Checkpoints(
            layout.checkpoints_dir(run_dir), max_to_keep=config.training.max_checkpoints,
            asynchronous=True))
        carried = _resume(trainer, checkpoints, state, identity, run_dir, existed, out)
        if _finished(config, carried, run_dir, out):
            return carried.stats
        network = nets.describe(trainer.network, carried.state.train_state.params)
        budget = config.training.time_budget_s
        print(f"Training {trainer.game.display_name}: {network}, "
              f"{config.selfplay.games} games x {config.mcts.simulations} simulations "
              f"({config.mcts.search}) on {_devices(trainer.mesh)}"
              + (f", time budget {budget:,.0f} s" if budget else "")
              + f", run directory {run_dir}", file=out)
        exporter = _Exporter(trainer, run_dir, out) if config.export.enabled and main else None
        if exporter:
            cleanup.callback(exporter.close)
        saver = cleanup.enter_context(_Saver(config, checkpoints, identity, run_dir, exporter,
                                             out))
        stops = cleanup.enter_context(_Stops(out, exit_at_once=exit_at_once))
        context = _Context(trainer, evaluator, stops, saver, out, progress)
        for iteration in range(carried.last_saved + 1, config.training.iterations + 1):
            done = _iteration(context, carried, iteration)
            if done is None:
                saver.finish()
                print(f"Stopped by {stops.signal_name}: iteration {iteration} dropped, "
                      f"{run_dir} holds iteration {carried.last_saved}; rerun the same command "
                      "to continue.", file=out)
                break
            carried, summary, final = done
            carried = saver.save(carried, iteration, summary, final=final)
            if final or stops.agreed():
                saver.finish()
                if stops.signal_name:
                    print(f"Stopped by {stops.signal_name} after iteration {iteration}, saved "
                          f"in {run_dir}; rerun the same command to continue.", file=out)
                elif iteration < config.training.iterations:
                    print(f"Time budget spent: {carried.counters.clock_s:,.0f} s of self-play "
                          f"and training in {iteration} iterations.", file=out)
                break
        if exporter and stops.signal_name != "SIGTERM":  # SIGKILL follows SIGTERM soon
            exporter.final(carried.state, carried.last_saved)
    return carried.stats


def _finished(config: config_lib.Config, carried: _Carried, run_dir: epath.Path,
              out: TextIO) -> bool:
    """Whether a resumed run has nothing left to do (says so)."""
    done, clock_s = carried.last_saved, carried.counters.clock_s
    budget = config.training.time_budget_s
    if done >= config.training.iterations:
        print(f"{run_dir} already has {done} iterations; raise --training.iterations to train "
              "more.", file=out)
        return True
    if budget and clock_s >= budget:
        print(f"{run_dir} has spent its time budget ({clock_s:,.0f} s of {budget:,.0f} s in "
              f"{done} iterations); raise --training.time_budget_s to train more.", file=out)
        return True
    return False


def _resume(trainer: trainer_lib.Trainer, checkpoints: checkpoint_lib.Checkpoints,
            state: trainer_lib.RunState, identity: dict, run_dir: epath.Path, existed: bool,
            out: TextIO) -> _Carried:
    """Where the run stands: its newest intact checkpoint and stats.json, or a new run from
    `state` (the initial state, also the template every checkpoint is restored into). A new
    run says so when the folder `existed`: a rerun never starts over silently."""
    initial_params = jax.device_get(state.train_state.params)
    stats_path = layout.stats_path(run_dir)
    game, config_json = trainer.game.name, trainer.config.model_dump(mode="json")

    def warn(line: str) -> None:
        print(f"Warning: {line}", file=out)

    def say(line: str) -> None:  # checkpoint.py's lines carry their own "Warning:" or "Note:"
        print(line, file=out)

    restored = checkpoints.restore_newest_intact(state, expected_meta=identity, warn=say)
    if restored is None:
        if stats_path.exists() and parallel.is_main_process():
            kept = stats_lib.move_aside(stats_path)
            warn(f"{run_dir} has a stats.json but no checkpoint to resume from: starting a new "
                 f"run; the old stats.json is now {kept}")
        elif existed:
            print(f"No checkpoint in {run_dir}: starting a new run", file=out)
        stats = stats_lib.new_stats(game, uuid.uuid4().hex[:12], config_json)
        return _Carried(state, stats, _Counters(), Best(initial_params, 0), last_saved=0)
    done, state, meta = restored
    counters = _Counters(**meta["counters"])
    stats = _resumed_stats(stats_path, meta, done, warn)
    print(f"Resuming {run_dir} after iteration {done} (step {int(state.train_state.step)})",
          file=out)
    best = _resumed_best(stats, done, run_dir, initial_params, state, out)
    return _Carried(state, stats, counters, best, last_saved=done)


def _resumed_stats(stats_path: epath.Path, meta: dict, done: int, warn) -> stats_lib.Stats:
    """The stats as of checkpoint `done`: the copy it holds. stats.json only mirrors it for
    readers; it lags when the process died between the commit and the write (written again
    silently), and may be damaged or deleted (written again with a warning), by the main
    process. A stats.json that cannot be read at all (permissions) or is of a newer version
    raises StatsError: it is not ours to replace."""
    if "stats" not in meta:  # saved before checkpoints held their stats
        return stats_lib.read_stats(stats_path)
    saved = stats_lib.Stats.model_validate(meta["stats"])
    try:
        mirrored = stats_lib.read_stats(stats_path).iteration if stats_path.exists() else None
    except stats_lib.DamagedStatsError as error:
        warn(f"{error.problem}: written again from the checkpoint of iteration {done}")
        mirrored = -1
    if mirrored is None:
        warn(f"{stats_path} is missing: written again from the checkpoint of iteration {done}")
    if mirrored != saved.iteration and parallel.is_main_process():
        _write_stats(stats_path, saved, done)
    return saved


def _write_stats(path: epath.Path, stats: stats_lib.Stats, checkpointed: int) -> None:
    """`stats.write_stats`, its OSError (a full disk, a read-only run directory) as StatsError
    in one line. The write is atomic: stats.json stays as it was."""
    try:
        stats_lib.write_stats(path, stats)
    except OSError as error:
        raise stats_lib.StatsError(
            f"cannot write {path} ({error.strerror or error}); the checkpoint of iteration "
            f"{checkpointed} and the previous stats.json are intact: free some space or make "
            "the run directory writable, then rerun the same command") from None


class _Saver:
    """Snapshots, checkpoints, stats.json and summary lines, in the order that keeps a run
    directory consistent.

    A checkpoint is written asynchronously (orbax copies the arrays, then writes on a thread
    while the next iteration runs). Its iteration's stats.json and summary line wait until it
    is committed: `poll` (between chunks) completes it once orbax is done, `finish` waits for
    it. So stats.json's `iteration` never runs ahead of the newest checkpoint, and a resume
    continues after the last iteration whose line was printed. Files other than checkpoints
    are the main process's to write.
    """

    def __init__(self, config: config_lib.Config, checkpoints: checkpoint_lib.Checkpoints,
                 identity: dict, run_dir: epath.Path, exporter: _Exporter | None, out: TextIO):
        self._config, self._checkpoints, self._identity = config, checkpoints, identity
        self._run_dir, self._exporter, self._out = run_dir, exporter, out
        self._main = parallel.is_main_process()
        self._pending: tuple[int, stats_lib.Stats, str | None] | None = None

    def __enter__(self) -> _Saver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()  # an error or a stop still keeps the save in flight

    def save(self, carried: _Carried, iteration: int, summary: str | None, *,
             final: bool) -> _Carried:
        """Saves `iteration` when due (every checkpoint_interval, the last one); returns the
        carried state with `last_saved` updated."""
        self.finish()
        snapshots = self._config.training.snapshot_interval
        if self._main and (carried.best.iteration == iteration
                           or (snapshots and iteration % snapshots == 0)):
            checkpoint_lib.save_snapshot(self._run_dir, iteration,
                                         carried.state.train_state.params)
        if not (final or iteration % self._config.training.checkpoint_interval == 0):
            self._print(summary)  # its stats wait for the next checkpoint
            return carried
        # The checkpoint holds the stats too, so that a resume never depends on stats.json.
        stats = carried.stats.model_copy(update={"last_checkpoint": iteration})
        self._checkpoints.save(iteration, carried.state, {
            **self._identity, "iteration": iteration, "stats": stats.model_dump(mode="json"),
            "counters": dataclasses.asdict(carried.counters)})
        self._pending = (iteration, stats, summary)  # so an exception below still completes it
        faults.point("checkpoint_save", iteration)
        if self._exporter:
            self._exporter.maybe_submit(carried.state, iteration)
        return dataclasses.replace(carried, stats=stats, last_saved=iteration)

    def poll(self) -> None:
        """Completes the save in flight if orbax has committed it."""
        if self._pending is not None and not self._checkpoints.saving():
            self.finish()

    def finish(self) -> None:
        """Waits for the save in flight, then writes its stats.json and prints its line."""
        if self._pending is None:
            return
        iteration, stats, summary = self._pending
        self._pending = None
        self._checkpoints.wait()
        if self._main:
            faults.point("stats_write", iteration)
            _write_stats(layout.stats_path(self._run_dir), stats, iteration)
        self._print(summary)

    def _print(self, summary: str | None) -> None:
        if summary is not None:
            tqdm.write(summary, file=self._out)


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
    """Exports checkpoints on a worker thread, off the training's path (the first jax2onnx
    export in a process costs seconds of start-up).

    An export starts at a checkpoint when none is running and at least `export.interval`
    iterations and `export.min_interval_s` seconds have passed since the last one started (the
    first checkpoint of a process always exports), and once more at the end. An export's error
    surfaces at the next export or at the end; a converter that fails (`ConverterError`: a
    jax2onnx that cannot handle this jax) is reported once and exporting stops, while training
    goes on: the checkpoints can be exported later.
    """

    def __init__(self, trainer: trainer_lib.Trainer, run_dir: epath.Path, out: TextIO):
        self._trainer, self._run_dir, self._out = trainer, run_dir, out
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="export")
        self._pending: concurrent.futures.Future | None = None
        self._last: tuple[int, float] | None = None  # (iteration, start time) of the last one
        self._announced = False
        self._failed: export_lib.ConverterError | None = None

    def maybe_submit(self, state: trainer_lib.RunState, iteration: int) -> None:
        if self._pending is not None:
            if not self._pending.done():
                return
            self._collect()  # a failed converter stops the exports here
        if self._failed:
            return
        settings = self._trainer.config.export
        if self._last is not None and (
                iteration - self._last[0] < settings.interval
                or time.monotonic() - self._last[1] < settings.min_interval_s):
            return
        self._submit(state, iteration)

    def final(self, state: trainer_lib.RunState, iteration: int) -> None:
        """Exports `iteration` unless that is done already; waits and raises its error."""
        if iteration and not self._failed and (self._last is None or self._last[0] < iteration):
            self._submit(state, iteration)
        self._collect()
        if self._failed:
            print(f"The network was not exported: once the converter works, run `cartridge-jax "
                  f"export {self._run_dir}`", file=self._out)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _submit(self, state: trainer_lib.RunState, iteration: int) -> None:
        self._collect()
        # A host copy: the next training chunk donates (frees) the device buffers.
        params = jax.device_get(state.train_state.params)
        step = int(state.train_state.step)
        self._last = (iteration, time.monotonic())
        self._pending = self._pool.submit(
            export_network, self._trainer, params, step, iteration, self._run_dir)

    def _collect(self) -> None:
        if self._pending is None:
            return
        try:
            folder, seconds = self._pending.result()
        except export_lib.ConverterError as error:
            self._failed = error
            print(f"Warning: export failed, training goes on without exporting: {error}",
                  file=self._out)
            return
        finally:
            self._pending = None
        if not self._announced:  # one line per run: later exports replace these files
            settings = self._trainer.config.export
            print(f"Exported the network to {folder} in {seconds:.1f} s; updated every "
                  f"{settings.interval} iterations and {settings.min_interval_s:g} s at most, "
                  "and at the end", file=self._out)
            self._announced = True


def export_network(trainer, params, step, iteration, run_dir) -> tuple[epath.Path, float]:
    """Exports `params` to <run_dir>/models/<game>/: (that folder, seconds taken)."""
    started = time.perf_counter()
    folder = layout.model_dir(run_dir, trainer.game.name)
    faults.point("export", iteration)
    try:
        export_lib.export_model(
            trainer.game, trainer.network, params, trainer.config.model, folder,
            step=step, iteration=iteration, opset=trainer.config.export.onnx_opset,
            ir_version=trainer.config.export.onnx_ir_version,
            agent=export_lib.agent_settings(trainer.config),
        )
    except OSError as error:  # manifest.json comes last: a cut export is never taken for whole
        raise export_lib.ExportError(
            f"cannot export iteration {iteration} to {folder} ({error.strerror or error}); the "
            "checkpoints are intact: free some space or make the folder writable, then rerun "
            f"the same command (once the run is complete: cartridge-jax export {run_dir})"
        ) from None
    return folder, time.perf_counter() - started


@dataclasses.dataclass(frozen=True)
class _Context:
    """What every iteration of a run shares."""

    trainer: trainer_lib.Trainer
    evaluator: Evaluator
    stops: _Stops
    saver: _Saver
    out: TextIO
    progress: bool

    def bar(self, total: int, desc: str, unit: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit=unit, file=self.out, leave=False,
                    disable=not self.progress, dynamic_ncols=True)

    def between_chunks(self) -> bool:
        """Host work between two chunks: completes a committed save; True means stop."""
        self.saver.poll()
        return self.stops.agreed()


@dataclasses.dataclass(frozen=True)
class _Carried:
    """What one iteration hands to the next."""

    state: trainer_lib.RunState
    stats: stats_lib.Stats
    counters: _Counters
    best: Best
    last_saved: int  # the newest checkpoint's iteration (0: none)


def _iteration(context: _Context, carried: _Carried,
               iteration: int) -> tuple[_Carried, str | None, bool] | None:
    """One iteration: self-play, training, evaluation when due, recorded in the stats.
    Returns what the next one starts from, the summary line (None below log level info) and
    whether this is the run's last iteration; None when a stop request dropped it."""
    config = context.trainer.config
    started = time.perf_counter()
    key, selfplay_key, train_key, eval_key = jax.random.split(carried.state.key, 4)
    state = carried.state.replace(key=key)
    time_fraction = _time_fraction(config, carried.counters)
    phases = _play_and_train(context, state, selfplay_key, train_key, iteration,
                             carried.last_saved, time_fraction)
    if phases is None:
        return None
    state, played, trained, selfplay_s, train_s = phases
    clock_s = carried.counters.clock_s + selfplay_s + train_s
    budget = config.training.time_budget_s
    final = iteration == config.training.iterations or bool(budget and clock_s >= budget)

    step = int(state.train_state.step)
    entries, points, best = [], [], carried.best
    interval = config.evaluation.interval
    if interval and (iteration % interval == 0 or final):
        with context.bar(context.evaluator.tests, f"{iteration} evaluate", "test") as pbar:
            def after_test():
                pbar.update(1)
                if context.between_chunks():
                    raise _Dropped

            try:
                entries, points, best = context.evaluator.evaluate(
                    state.train_state.params, best, iteration, step, eval_key,
                    after_test=after_test)
            except _Dropped:
                return None

    counters = _Counters(
        positions_generated=carried.counters.positions_generated + played.positions,
        games_played=carried.counters.games_played + played.games_finished,
        samples_seen=carried.counters.samples_seen + trained.steps * config.training.batch_size,
        wall_time_s=carried.counters.wall_time_s + time.perf_counter() - started,
        clock_s=clock_s,
    )
    stats, summary = _record(context, carried.stats, state, iteration, counters, played,
                             trained, selfplay_s, entries, points, time_fraction)
    carried = dataclasses.replace(carried, state=state, stats=stats, counters=counters,
                                  best=best)
    return carried, summary, final


def _time_fraction(config: config_lib.Config, counters: _Counters) -> float:
    """The part of `training.time_budget_s` spent (0 without a budget)."""
    budget = config.training.time_budget_s
    return min(counters.clock_s / budget, 1.0) if budget else 0.0


def _play_and_train(context: _Context, state, selfplay_key, train_key, iteration: int,
                    last_saved: int, time_fraction: float):
    """(state, self-play result, training result, self-play seconds, training seconds), with
    progress bars; None when a stop request ended either phase. A non-finite loss raises
    TrainingError."""
    trainer, config = context.trainer, context.trainer.config
    started = time.perf_counter()
    with context.bar(config.selfplay.moves_per_iteration, f"{iteration} self-play",
                     "move") as pbar:
        def after_moves(_moves_done):
            pbar.update(trainer.selfplay_chunk)
            faults.point("selfplay", iteration)
            return context.between_chunks()

        state, played = trainer_lib.selfplay_phase(trainer, state, selfplay_key,
                                                   after_chunk=after_moves)
    selfplay_s = time.perf_counter() - started
    if played.stopped:
        return None

    started = time.perf_counter()
    with context.bar(config.training.steps_per_iteration, f"{iteration} train", "step") as pbar:
        def after_steps(losses, train_state):
            total = float(losses.total)
            if not math.isfinite(total):
                kept = (f"the run directory keeps iteration {last_saved}" if last_saved
                        else "nothing was saved yet")
                raise TrainingError(
                    f"the loss became {total} at step {int(train_state.step)} (iteration "
                    f"{iteration}); stopped without saving it, {kept}: lower "
                    "--training.learning_rate or --training.grad_clip_norm")
            pbar.update(trainer.train_chunk)
            faults.point("train", iteration)
            return context.between_chunks()

        state, trained = trainer_lib.train_phase(trainer, state, train_key,
                                                 time_fraction=time_fraction,
                                                 after_chunk=after_steps)
    if trained.stopped:
        return None
    return state, played, trained, selfplay_s, time.perf_counter() - started


def _record(context: _Context, stats, state, iteration, counters, played, trained, selfplay_s,
            entries, points, time_fraction) -> tuple[stats_lib.Stats, str | None]:
    """The iteration in stats.json's history (and its evaluation, if any), and its summary
    line (None below log level info)."""
    config = context.trainer.config
    step = int(state.train_state.step)
    mean_losses = (
        {field: float(sum(getattr(l, field) for l in trained.losses) / len(trained.losses))
         for field in ("total", "policy", "value")}
        if trained.losses else {"total": None, "policy": None, "value": None}
    )
    # The rate of the iteration's last step: its training saw the clock as it was at the start.
    learning_rate = float(learner.learning_rate(config, max(step - 1, 0), time_fraction))
    positions_per_s, games_per_s = played.positions / selfplay_s, played.games_finished / selfplay_s
    stats = stats_lib.record_iteration(
        stats, step=step, iteration=iteration, losses=mean_losses, learning_rate=learning_rate,
        throughput={"positions_per_s": positions_per_s, "games_per_s": games_per_s,
                    "train_steps_per_s": None},
        replay_size=int(replay.size(state.buffer)), samples_seen=counters.samples_seen,
        positions_generated=counters.positions_generated, games_played=counters.games_played,
        wall_time_s=counters.wall_time_s, clock_s=counters.clock_s,
        replay_capacity=state.buffer.capacity,
    )
    if entries:
        stats = stats_lib.record_eval(stats, entries)
        # On the training clock and positions: strength curves against compute.
        stats = stats_lib.record_benchmarks(stats, [
            point.model_copy(update={"clock_s": counters.clock_s,
                                     "positions_generated": counters.positions_generated})
            for point in points])
    if config.common.log_level not in ("debug", "info"):
        return stats, None
    return stats, _summary_line(iteration, config.training.iterations, step, mean_losses,
                                learning_rate, positions_per_s, games_per_s, entries, points,
                                counters.wall_time_s)


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
