"""The compiled phases of one configuration: self-play into the replay buffer, and training.

    trainer = Trainer(config)                      # compiles nothing yet
    state = trainer.initial_state()                # RunState laid out over the mesh
    state, played = selfplay_phase(trainer, state, key)
    state, trained = train_phase(trainer, state, key)

Each phase is one jitted function, compiled once per configuration and called in a few chunks
(`selfplay_chunk` moves, `train_chunk` gradient steps); between chunks the caller's
`after_chunk` runs on the host (progress bars, stop requests, the loss check) and may stop the
phase early. The training loop, the benchmark and the tests all call these two functions.

The phases run over every device (`Trainer.mesh`, see parallel.py): self-play and the replay
buffer split by games, training batches split, everything else replicated.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cartridge_jax import games as games_lib
from cartridge_jax import parallel
from cartridge_jax.config import Config
from cartridge_jax.model import nets
from cartridge_jax.parallel import DATA_AXIS
from cartridge_jax.training import learner, replay, selfplay

MAX_SELFPLAY_CHUNK = 16  # moves per self-play chunk: progress shows between chunks
MAX_TRAIN_CHUNK = 50  # gradient steps per training chunk


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

    def __init__(self, config: Config, mesh: Mesh | None = None):
        self.config = config
        self.game = games_lib.make(config.common.game)
        self.network = nets.make_network(config.model, self.game)
        self.optimizer = learner.make_optimizer(config)
        self.selfplay_chunk = chunk_length(config.selfplay.moves_per_iteration, MAX_SELFPLAY_CHUNK)
        self.train_chunk = chunk_length(config.training.steps_per_iteration, MAX_TRAIN_CHUNK)

        # Every device of every process: games and replay columns split over them, the rest
        # replicated (parallel.py).
        self.mesh = mesh or parallel.data_mesh()
        parallel.check_divisible(config, self.mesh.size)
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
            in_shardings=(sh.train_state, sh.buffer, sh.key, parallel.replicated(self.mesh)),
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

    def identity(self, params) -> dict[str, Any]:
        """What a checkpoint must match to be resumed by this configuration (`nets.identity`)."""
        return nets.identity(self.game, self.network, params)


def _selfplay_and_store(game, apply, config, moves, params, games, buffer, key):
    """One self-play chunk of this device's games written straight into its replay columns;
    also the games finished on all devices. Runs inside shard_map."""
    key = jax.random.fold_in(key, jax.lax.axis_index(DATA_AXIS))
    games, trajectory = selfplay.play(
        game, apply, config.mcts, config.selfplay.random_opening_moves, params, games, key, moves
    )
    finished = jax.lax.psum(jnp.sum(trajectory.terminated), DATA_AXIS)
    return games, replay.add(buffer, trajectory), finished


# --- the phases -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SelfplayResult:
    positions: int  # positions played (games x moves), all devices
    games_finished: int
    stopped: bool  # cut short by `after_chunk`


@dataclasses.dataclass(frozen=True)
class TrainResult:
    losses: list[learner.Losses]  # one per chunk, each the chunk's mean
    steps: int  # gradient steps taken
    stopped: bool  # cut short by `after_chunk`


def selfplay_phase(trainer: Trainer, state: RunState, key: jax.Array, *,
                   step: Callable | None = None,
                   after_chunk: Callable[[int], bool] | None = None
                   ) -> tuple[RunState, SelfplayResult]:
    """`selfplay.moves_per_iteration` moves of every game, in chunks, into the replay buffer.

    `step`: the compiled chunk (default `trainer.selfplay`; the benchmark passes an executable
    compiled ahead). `after_chunk(moves_done)` runs on the host after each chunk; True stops.
    """
    step = step or trainer.selfplay
    config = trainer.config
    chunks = config.selfplay.moves_per_iteration // trainer.selfplay_chunk
    params, games, buffer = state.train_state.params, state.games, state.buffer
    finished, done, stopped = 0, 0, False
    for chunk_key in jax.random.split(key, chunks):
        games, buffer, games_done = step(params, games, buffer, chunk_key)
        finished += int(games_done)
        done += trainer.selfplay_chunk
        if after_chunk and after_chunk(done):
            stopped = True
            break
    state = state.replace(games=games, buffer=buffer)
    return state, SelfplayResult(done * config.selfplay.games, finished, stopped)


def train_phase(trainer: Trainer, state: RunState, key: jax.Array, *,
                time_fraction: float = 0.0, step: Callable | None = None,
                after_chunk: Callable[[learner.Losses, learner.TrainState], bool] | None = None
                ) -> tuple[RunState, TrainResult]:
    """`training.steps_per_iteration` gradient steps in chunks; none while the replay buffer
    holds no finished game.

    `time_fraction`: the part of the time budget spent (it drives the learning rate with the
    step, `learner.learning_rate`). `step`: the compiled chunk (default `trainer.train`),
    called as step(train_state, buffer, key, time_fraction). `after_chunk(losses, train_state)`
    runs on the host after each chunk with its mean losses and the new train state; True stops.
    """
    step = step or trainer.train
    if not int(replay.size(state.buffer)):
        return state, TrainResult([], 0, False)
    chunks = trainer.config.training.steps_per_iteration // trainer.train_chunk
    train_state, losses_seen, stopped = state.train_state, [], False
    for chunk_key in jax.random.split(key, chunks):
        train_state, losses = step(train_state, state.buffer, chunk_key, time_fraction)
        losses_seen.append(losses)
        if after_chunk and after_chunk(losses, train_state):
            stopped = True
            break
    state = state.replace(train_state=train_state)
    return state, TrainResult(losses_seen, len(losses_seen) * trainer.train_chunk, stopped)
