"""The training loop: iterations of self-play -> train -> evaluate, resumable.

Each phase is compiled once per configuration and run in a few jitted chunks; the host only
updates progress bars, checks for a stop request and a finite loss between chunks. The phases
run over every device (`Trainer.mesh`, see parallel.py): self-play and the replay buffer
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
import functools
import io
import math
import signal
import sys
import time
import uuid
from typing import Any, TextIO

import jax
import jax.numpy as jnp
from etils import epath
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jax.tree_util import Partial
from tqdm import tqdm

from cartridge_jax.evaluation import arena
from cartridge_jax import parallel
from cartridge_jax.evaluation import evaluate
from cartridge_jax.training import learner
from cartridge_jax.model import nets
from cartridge_jax.training import replay
from cartridge_jax.training import selfplay
from cartridge_jax.run import checkpoint as checkpoint_lib
from cartridge_jax import config as config_lib
from cartridge_jax.model import export as export_lib
from cartridge_jax import games as games_lib
from cartridge_jax.run import layout
from cartridge_jax.run import stats as stats_lib
from cartridge_jax.parallel import DATA_AXIS

MAX_SELFPLAY_CHUNK = 16  # moves per self-play chunk: progress shows between chunks
MAX_TRAIN_CHUNK = 50  # gradient steps per training chunk


class TrainingError(Exception):
    """The run cannot go on (e.g. the loss became NaN); the message is one line for people."""


@struct.dataclass
class RunState:
    """Everything a checkpoint holds, besides counters kept in its metadata."""

    train_state: learner.TrainState
    buffer: replay.ReplayBuffer
    games: selfplay.Games
    key: jax.Array


def chunk_length(total: int, largest: int) -> int:
    """The largest divisor of `total` not above `largest`: equal chunks, one compilation."""
    return max(d for d in range(1, min(total, largest) + 1) if total % d == 0)


class Trainer:
    """The compiled phases of one configuration, over `mesh` (default: every device)."""

    def __init__(self, config: config_lib.Config, mesh: Mesh | None = None):
        self.config = config
        self.game = games_lib.make(config.common.game)
        self.network = nets.make_network(config.model, self.game)
        self.optimizer = learner.make_optimizer(config)
        self.schedule = learner.learning_rate_schedule(config)
        self.selfplay_chunk = chunk_length(config.selfplay.moves_per_iteration, MAX_SELFPLAY_CHUNK)
        self.train_chunk = chunk_length(config.training.steps_per_iteration, MAX_TRAIN_CHUNK)
        self.opponent_names = (*config.evaluation.opponents, "best")
        self.eval_games = 2 * max(1, config.evaluation.games // 2)  # even: half each colour

        # Every device of every process: games and replay columns split over them, the rest
        # replicated (parallel.py).
        self.mesh = mesh or parallel.data_mesh()
        parallel.check_divisible(config, self.mesh.size)
        # Evaluation splits its games and positions over this process's devices alone: every
        # process plays the whole evaluation, so all get the same results without exchanging
        # them (with the same number of devices each).
        self.eval_mesh = parallel.data_mesh(
            [device for device in self.mesh.devices.flat
             if device.process_index == jax.process_index()])
        specs = RunState(train_state=PartitionSpec(), buffer=replay.partition_spec(DATA_AXIS),
                         games=PartitionSpec(DATA_AXIS), key=PartitionSpec())
        self.shardings = jax.tree.map(lambda spec: NamedSharding(self.mesh, spec), specs,
                                      is_leaf=lambda x: isinstance(x, PartitionSpec))
        apply, sh = self.network.apply, self.shardings
        game, cfg = self.game, config
        # Self-play needs nothing from other devices: each plays its own games into its own
        # replay columns, with its own random stream.
        self.selfplay = jax.jit(
            jax.shard_map(
                functools.partial(_selfplay_and_store, game, apply, cfg, self.selfplay_chunk),
                mesh=self.mesh, in_specs=(specs.train_state, specs.games, specs.buffer, specs.key),
                out_specs=(specs.games, specs.buffer, PartitionSpec()),
                # mctx's loops start from unsharded constants, which the varying-value check
                # rejects; the replicated outputs (games finished, the cursor) are so by design.
                check_vma=False),
            # Stated, so that outputs feed the next call unchanged (one compilation).
            in_shardings=(sh.train_state, sh.games, sh.buffer, sh.key),
            out_shardings=(sh.games, sh.buffer, parallel.replicated(self.mesh)),
            donate_argnums=(1, 2),
        )
        self.train = jax.jit(
            functools.partial(learner.train, game, apply, self.optimizer, cfg,
                              steps=self.train_chunk, mesh=self.mesh),
            in_shardings=(sh.train_state, sh.buffer, sh.key),
            out_shardings=(sh.train_state, parallel.replicated(self.mesh)),
            donate_argnums=(0,),
        )

    def initial_state(self) -> RunState:
        """The state of a new run, laid out over the mesh (`shardings`)."""
        return jax.jit(self._initial_state, out_shardings=self.shardings)()

    def _initial_state(self) -> RunState:
        key = jax.random.key(self.config.common.seed)
        params_key, games_key, key = jax.random.split(key, 3)
        params = nets.init_params(self.network, self.game, params_key)
        return RunState(
            train_state=learner.init_train_state(self.optimizer, params),
            buffer=replay.init(
                self.game, self.config.training.replay_capacity, self.config.selfplay.games
            ),
            games=selfplay.new_games(
                self.game, games_key, self.config.selfplay.games,
                self.config.selfplay.random_opening_moves,
            ),
            key=key,
        )

    def agent(self, params) -> evaluate.Agent:
        """The evaluated agent (and the best model's) with `params`."""
        return evaluate.search_agent(self.game, self.network.apply, params,
                                     self.config.evaluation.simulations, self.config.mcts.c_puct)

    @functools.cached_property
    def opponents(self) -> tuple[evaluate.Agent, ...]:
        """The configured opponents' agents (models loaded once); ConfigError if one cannot be."""
        try:
            return tuple(
                evaluate.opponent_agent(self.game, name, c_puct=self.config.mcts.c_puct,
                                        simulations=self.config.evaluation.simulations)
                for name in self.config.evaluation.opponents)
        except ValueError as error:
            raise config_lib.ConfigError(f"evaluation.opponents: {error}") from None

    @functools.cached_property
    def benchmarks(self) -> tuple[evaluate.PositionSet, ...]:
        """The configured position sets, loaded once; ConfigError if one cannot be."""
        limit = self.config.evaluation.benchmark_positions
        try:
            return tuple(evaluate.load_benchmark(self.game, name, limit=limit)
                         for name in self.config.evaluation.benchmarks)
        except ValueError as error:
            raise config_lib.ConfigError(f"evaluation.benchmarks: {error}") from None

    def match(self, params, best_params, index: int, key: jax.Array) -> arena.MatchResult:
        """The agent with `params` against opponent `opponent_names[index]` ("best": the agent
        with `best_params`). One compilation serves every opponent: the opponent is picked
        inside it by `lax.switch`, and parameters are arguments."""
        opponents = (*self.opponents, self.agent(best_params))
        opponent = Partial(_switch, opponents, jnp.int32(index))
        return arena.result(evaluate.play(self.game, self.agent(params), opponent,
                                          self.eval_games, key, self.eval_mesh))

    def identity(self, params) -> dict[str, Any]:
        """What a checkpoint must match to be resumed by this configuration.

        The network is described without its compute dtype: parameters are float32 either way,
        so a run may resume in bfloat16 what it trained in float32, or the other way round.
        """
        return {
            "game": self.game.name,
            "encoding_version": self.game.encoding_version,
            "network": nets.describe(self.network.clone(dtype=jnp.float32), params),
            "params_fingerprint": checkpoint_lib.params_fingerprint(params),
        }


def _selfplay_and_store(game, apply, config, moves, params, games, buffer, key):
    """One self-play chunk of this device's games written straight into its replay columns;
    also the games finished on all devices. Runs inside shard_map."""
    key = jax.random.fold_in(key, jax.lax.axis_index(DATA_AXIS))
    games, trajectory = selfplay.play(
        game, apply, config.mcts, config.selfplay.random_opening_moves, params, games, key, moves
    )
    finished = jax.lax.psum(jnp.sum(trajectory.terminated), DATA_AXIS)
    return games, replay.add(buffer, trajectory), finished


def _switch(opponents, index, key, states):
    return jax.lax.switch(index, opponents, key, states)


def restore_latest(config: config_lib.Config) -> tuple[Trainer, RunState, int]:
    """(trainer, state, iteration) of the run directory's latest checkpoint.

    Raises checkpoint.CheckpointError when there is none or it belongs to another setup. The
    state is laid out on the first device alone: readers (eval, export) need no mesh, and a
    checkpoint saved on any number of devices loads whatever the batches' divisibility here.
    """
    trainer = Trainer(config, parallel.data_mesh(jax.devices()[:1]))
    directory = layout.checkpoints_dir(layout.run_dir(config))
    state = trainer.initial_state()
    with checkpoint_lib.Checkpoints(directory,
                                    max_to_keep=config.training.max_checkpoints) as saved:
        iteration = saved.latest_iteration()
        if iteration is None:
            raise checkpoint_lib.CheckpointError(
                f"no checkpoint in {directory}: train first (python scripts/train.py)")
        state, _ = saved.restore(state, expected_meta=trainer.identity(state.train_state.params))
    return trainer, state, iteration


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


@dataclasses.dataclass(frozen=True)
class Best:
    """The best network so far: the evaluation's "best" opponent."""

    params: Any  # a host copy (training donates the device buffers)
    iteration: int  # 0 for the initial network


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
    trainer = Trainer(config)
    run_dir = layout.run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)  # by every process: orbax needs it on each host
    stats_path = run_dir / "stats.json"
    state = trainer.initial_state()
    initial_params = jax.device_get(state.train_state.params)
    identity = trainer.identity(state.train_state.params)
    if config.evaluation.interval:  # a bad opponent or benchmark stops the run before it starts
        _ = trainer.opponents, trainer.benchmarks
    checkpoints = checkpoint_lib.Checkpoints(
        run_dir / "checkpoints", max_to_keep=config.training.max_checkpoints
    )
    done = checkpoints.latest_iteration() or 0
    counters = _Counters()
    if done:
        state, meta = checkpoints.restore(state, expected_meta=identity)
        counters = _Counters(**meta["counters"])
        stats = stats_lib.read_stats(stats_path) if stats_path.exists() else None
        print(f"Resuming {run_dir} after iteration {done} (step {int(state.train_state.step)})",
              file=out)
    else:
        stats = None
    if stats is None:
        stats = stats_lib.new_stats(
            trainer.game.name, uuid.uuid4().hex[:12], config.model_dump(mode="json")
        )
    best = _resumed_best(stats, done, run_dir, initial_params, state, out)
    if done >= config.training.iterations:
        print(f"{run_dir} already has {done} iterations; raise --training.iterations to train "
              "more.", file=out)
        checkpoints.close()
        return stats
    print(f"Training {trainer.game.display_name}: {nets.describe(trainer.network, state.train_state.params)}, "
          f"{config.selfplay.games} games x {config.mcts.simulations} simulations "
          f"({config.mcts.search}) on {_devices(trainer.mesh)}, run directory {run_dir}",
          file=out)

    last_saved = done
    exporter = _Exporter(trainer, run_dir, out) if config.export.enabled and main else None
    try:
        with _StopRequest() as stop:
            for iteration in range(done + 1, config.training.iterations + 1):
                state, stats, counters, best, cut_short = _iteration(
                    trainer, state, stats, counters, best, iteration, last_saved, stop, out,
                    progress
                )
                final = iteration == config.training.iterations
                save = cut_short or final or iteration % config.training.checkpoint_interval == 0
                snapshots = config.training.snapshot_interval
                snapshot = best.iteration == iteration or (
                    snapshots and iteration % snapshots == 0)
                if snapshot and main:
                    checkpoint_lib.save_snapshot(run_dir, iteration, state.train_state.params)
                if save:
                    stats = stats.model_copy(update={"last_checkpoint": iteration})
                # Stats first: a run that dies between the two redoes this iteration on resume,
                # and record_iteration then replaces its history point instead of leaving a gap.
                if main:
                    stats_lib.write_stats(stats_path, stats)
                if save:
                    checkpoints.save(
                        iteration, state,
                        {**identity, "iteration": iteration,
                         "counters": dataclasses.asdict(counters)},
                    )
                    last_saved = iteration
                    if exporter:
                        exporter.submit(state, iteration)
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
    return stats


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

    def __init__(self, trainer: Trainer, run_dir: epath.Path, out: TextIO):
        self._trainer, self._run_dir, self._out = trainer, run_dir, out
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="export")
        self._pending: concurrent.futures.Future | None = None
        self._announced = False

    def submit(self, state: RunState, iteration: int) -> None:
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
    folder = export_lib.model_dir(run_dir, trainer.game.name)
    export_lib.export_model(
        trainer.game, trainer.network, params, trainer.config.model, folder,
        step=step, iteration=iteration,
        opset=trainer.config.export.onnx_opset, ir_version=trainer.config.export.onnx_ir_version,
        agent=export_lib.agent_settings(trainer.config),
    )
    return folder, time.perf_counter() - started


def _iteration(trainer, state, stats, counters, best, iteration, last_saved, stop, out, progress):
    """One iteration; returns (state, stats, counters, best, cut_short by a stop request)."""
    config = trainer.config
    started = time.perf_counter()
    key, selfplay_key, train_key, eval_key = jax.random.split(state.key, 4)
    params = state.train_state.params
    buffer, games = state.buffer, state.games
    bar = functools.partial(tqdm, file=out, leave=False, disable=not progress, dynamic_ncols=True)

    moves = config.selfplay.moves_per_iteration
    finished = 0
    with bar(total=moves, desc=f"{iteration} self-play", unit="move") as pbar:
        for chunk, chunk_key in enumerate(jax.random.split(selfplay_key, moves // trainer.selfplay_chunk)):
            games, buffer, games_done = trainer.selfplay(params, games, buffer, chunk_key)
            finished += int(games_done)
            pbar.update(trainer.selfplay_chunk)
            stopping = stop.agreed()
            if stopping:
                break
    selfplay_s = time.perf_counter() - started
    positions = (chunk + 1) * trainer.selfplay_chunk * config.selfplay.games
    state = RunState(state.train_state, buffer, games, key)

    train_state = state.train_state
    losses_seen = []
    replay_size = int(replay.size(buffer))
    if replay_size and not stopping:
        steps = config.training.steps_per_iteration
        with bar(total=steps, desc=f"{iteration} train", unit="step") as pbar:
            for chunk_key in jax.random.split(train_key, steps // trainer.train_chunk):
                train_state, losses = trainer.train(train_state, buffer, chunk_key)
                total = float(losses.total)
                if not math.isfinite(total):
                    raise TrainingError(
                        f"the loss became {total} at step {int(train_state.step)} (iteration "
                        f"{iteration}); stopped without saving it, the last good checkpoint "
                        f"(iteration {last_saved}) is kept: lower --training.learning_rate or "
                        "--training.grad_clip_norm")
                losses_seen.append(losses)
                pbar.update(trainer.train_chunk)
                stopping = stop.agreed()
                if stopping:
                    break
    state = RunState(train_state, buffer, games, key)

    step = int(train_state.step)
    entries, points = [], []
    interval = config.evaluation.interval
    final = iteration == config.training.iterations
    if interval and (iteration % interval == 0 or final) and not stopping:
        entries, points, best = evaluate_network(trainer, train_state.params, best, iteration,
                                                 step, eval_key, bar)

    elapsed = time.perf_counter() - started
    counters = _Counters(
        positions_generated=counters.positions_generated + positions,
        games_played=counters.games_played + finished,
        samples_seen=counters.samples_seen + len(losses_seen) * trainer.train_chunk * config.training.batch_size,
        wall_time_s=counters.wall_time_s + elapsed,
    )
    mean_losses = (
        {field: float(sum(getattr(l, field) for l in losses_seen) / len(losses_seen))
         for field in ("total", "policy", "value")}
        if losses_seen else {"total": None, "policy": None, "value": None}
    )
    learning_rate = float(trainer.schedule(max(step - 1, 0)))
    stats = stats_lib.record_iteration(
        stats, step=step, iteration=iteration, losses=mean_losses, learning_rate=learning_rate,
        throughput={"positions_per_s": positions / selfplay_s, "games_per_s": finished / selfplay_s,
                    "train_steps_per_s": None},
        replay_size=int(replay.size(buffer)), samples_seen=counters.samples_seen,
        positions_generated=counters.positions_generated, games_played=counters.games_played,
        wall_time_s=counters.wall_time_s, replay_capacity=buffer.capacity,
    )
    if entries:
        stats = stats_lib.record_eval(stats, entries)
        stats = stats_lib.record_benchmarks(stats, points)
    if config.common.log_level in ("debug", "info"):
        tqdm.write(_summary_line(iteration, config.training.iterations, step, mean_losses,
                                 learning_rate, positions / selfplay_s, finished / selfplay_s,
                                 entries, points, counters.wall_time_s), file=out)
    return state, stats, counters, best, stopping


def evaluate_network(trainer, params, best, iteration, step, key, bar):
    """(eval entries, benchmark points, best): matches against every opponent and the best
    network, then the benchmark sets; the network becomes the best on a high enough score.

    Every process runs the whole evaluation on its own devices (`Trainer.eval_mesh`), from a
    host copy of the parameters, so every process gets the same results (same key, same
    program)."""
    params = jax.device_get(params)
    # The key too: it lives on every device of the run, and the evaluation on this process's.
    key = jax.random.wrap_key_data(jax.device_get(jax.random.key_data(key)),
                                   impl=jax.random.key_impl(key))
    match_key, benchmark_key = jax.random.split(key)
    results, measures = {}, {}
    with bar(total=len(trainer.opponent_names) + len(trainer.benchmarks),
             desc=f"{iteration} evaluate", unit="test") as pbar:
        for index, name in enumerate(trainer.opponent_names):
            results[name] = trainer.match(params, best.params, index,
                                          jax.random.fold_in(match_key, index))
            pbar.update(1)
        for index, positions in enumerate(trainer.benchmarks):
            measures[positions.name] = positions.measure(
                trainer.agent(params), jax.random.fold_in(benchmark_key, index),
                mesh=trainer.eval_mesh)
            pbar.update(1)
    promoted = results["best"].score >= trainer.config.evaluation.win_threshold
    entries = [
        stats_lib.eval_entry(step=step, iteration=iteration, opponent=name, wins=result.wins,
                             draws=result.draws, losses=result.losses,
                             became_new_best=promoted and name == "best")
        for name, result in results.items()]
    points = [
        stats_lib.BenchmarkPoint(step=step, iteration=iteration, name=name, metric=metric,
                                 value=value)
        for name, measure in measures.items() for metric, value in measure.items()
        if metric != "n"]
    return entries, points, Best(jax.device_get(params), iteration) if promoted else best


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
    parts += [f"{point.name.split('/')[-1]} {point.metric} {point.value:.3f}"
              for point in shown.values() if point.value is not None]
    parts.append(f"{wall_time_s:.1f} s")
    return " | ".join(parts)
