"""Agents: THE search agent over a network, named opponents and model paths as agents, and
running any agent over many positions, split over devices.

An agent is batched: `(key, states [B]) -> int32[B]` moves. An agent that is a
`jax.tree_util.Partial` (as `search_agent` returns) passes its parameters as arguments, not as
constants baked into the compiled program; a new agent with the same network and settings then
reuses the compilation (the training loop evaluates new parameters every few iterations).

Given a `mesh` of several devices, work is split over them: each device takes its share of the
positions (or games, in arena.py) with its own random stream.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec
from jax.tree_util import Partial

from cartridge_jax import opponents
from cartridge_jax.config import opponent_names
from cartridge_jax.games import Game, State
from cartridge_jax.model import load, search
from cartridge_jax.parallel import DATA_AXIS

Agent = Callable[[jax.Array, State], jax.Array]  # (key, states [B]) -> actions int32[B]


def search_agent(game: Game, apply_fn: search.ApplyFn, params, simulations: int) -> Agent:
    """THE agent (`search.agent_search`) with these parameters; `simulations=0` plays the raw
    network's most likely legal move."""
    search.check_simulations(simulations)
    return Partial(_search_policy(game, apply_fn, simulations), params)


@functools.lru_cache(maxsize=16)
def _search_policy(game, apply_fn, simulations):
    # Cached: one function object per setting, so jit reuses its compilation for new params.
    def policy(params, key, states):
        return search.agent_search(
            game, apply_fn, params, key, states, simulations=simulations
        ).action

    return policy


def opponent_agent(game: Game, name: str, *, simulations: int) -> Agent:
    """The agent of opponent `name` (opponents.py); a model path is played by the agent's search
    at `simulations`, like the evaluated model."""
    opponent = opponent_names.parse(name)
    if opponent.kind != "model":
        return opponents.builtin_agent(game, name)
    return load_agent(game, opponent.path, simulations=simulations)[0]


def load_agent(game: Game, path, *, simulations: int) -> tuple[Agent, int]:
    """(agent, iteration) of the model at `path` (any path `model.load` reads), which must
    play `game`; ValueError (one line) otherwise."""
    model = load.load_model(path)
    if model.game is not game:
        raise ValueError(f"model {path} plays {model.game.name}, not {game.name}")
    return search_agent(game, model.network.apply, model.params, simulations), model.iteration


def as_partial(agent: Agent) -> Partial:
    return agent if isinstance(agent, Partial) else Partial(agent)


def split_over(mesh: Mesh | None) -> Mesh | None:
    """`mesh` if it has several devices to split work over, else None: one device runs the
    plain program (one compilation for every single-device call, the same results as ever)."""
    return mesh if mesh is not None and mesh.size > 1 else None


def on_each_device(function: Callable, mesh: Mesh, in_specs: tuple, out_specs) -> Callable:
    """`function(key, *args)` run on every device of `mesh` with its own key (the given one
    folded with the device's index), arguments and results split per the specs."""

    def local(key, *args):
        return function(jax.random.fold_in(key, jax.lax.axis_index(DATA_AXIS)), *args)

    return jax.shard_map(local, mesh=mesh, in_specs=(PartitionSpec(), *in_specs),
                         out_specs=out_specs, check_vma=False)


@functools.partial(jax.jit, static_argnums=(3,))
def act(agent: Partial, key: jax.Array, states: State, mesh: Mesh | None = None) -> jax.Array:
    """`agent`'s moves for `states`; split over `mesh` (from `split_over`) unless it is None."""
    if mesh is None:
        return agent(key, states)

    def local(key, agent, states):  # this device's positions
        return agent(key, states)

    split = PartitionSpec(DATA_AXIS)  # positions [B] split over the devices
    return on_each_device(local, mesh, (PartitionSpec(), split), split)(key, agent, states)


def actions_in_chunks(agent: Agent, states: State, key: jax.Array, batch_size: int,
                       mesh: Mesh | None = None) -> np.ndarray:
    """int32[N] moves of `agent` for `states` [N], in chunks of `batch_size` (the last padded;
    rounded up to a multiple of the mesh's devices)."""
    agent, mesh = as_partial(agent), split_over(mesh)
    if mesh is not None:
        batch_size = -(-batch_size // mesh.size) * mesh.size
    count = int(states.current_player.shape[0])
    actions = []
    for index, start in enumerate(range(0, count, batch_size)):
        chunk = padded_rows(states, start, batch_size)
        actions.append(np.asarray(act(agent, jax.random.fold_in(key, index), chunk, mesh)))
    return np.concatenate(actions)[:count] if actions else np.zeros(0, np.int32)


def padded_rows(tree: Any, start: int, size: int) -> Any:
    """Rows start..start+size of every leaf, padded by repeating row `start` (so valid)."""

    def rows(leaf):
        leaf = np.asarray(leaf)
        chunk = leaf[start:start + size]
        padding = np.repeat(chunk[:1], size - len(chunk), axis=0)
        return np.concatenate([chunk, padding])

    return jax.tree.map(rows, tree)
