"""The replay buffer: fixed-size arrays on the device, a ring over self-play moves.

Layout: `[R, G]` slots, R rows of G games (G = the self-play batch). Self-play writes one row per
move of all games, so a game's positions stay in its column, in order. A position becomes
sampleable (`complete`) once its game has ended and its value target (the final outcome from
the view of the player who moved there) is known; `add` fills in the targets of earlier rows
when a game ends in a later chunk. On several devices the G columns are split over them
(`partition_spec`): `add` works column by column, so each device writes its own games' columns.

Bytes per position: observation rows*cols*planes (uint8) + policy target 4*A (float32) +
legal mask A (bool) + value target 4 + player 1 + two flags 2.
TicTacToe: 18 + 36 + 9 + 7 = 70 B; Connect 4: 84 + 28 + 7 + 7 = 126 B; Othello: 128 + 260 + 65
+ 7 = 460 B. So 1M Othello positions take ~460 MB.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh, PartitionSpec

from cartridge_jax.games import Game


@struct.dataclass
class Trajectory:
    """A chunk of self-play: T moves of G games, in move order. Shapes `[T, G, ...]`."""

    observation: jax.Array  # uint8[T, G, rows, cols, planes], before the move
    policy_target: jax.Array  # float32[T, G, A]
    legal_action_mask: jax.Array  # bool[T, G, A]
    player: jax.Array  # int8[T, G]: who moved
    terminated: jax.Array  # bool[T, G]: the move ended the game
    rewards: jax.Array  # float32[T, G, 2]: the final rewards when `terminated`


@struct.dataclass
class ReplayBuffer:
    observation: jax.Array  # uint8[R, G, rows, cols, planes]
    policy_target: jax.Array  # float32[R, G, A]
    legal_action_mask: jax.Array  # bool[R, G, A]
    value_target: jax.Array  # float32[R, G]: final outcome for the player who moved there
    player: jax.Array  # int8[R, G]
    complete: jax.Array  # bool[R, G]: the value target is known (the slot is sampleable)
    pending: jax.Array  # bool[R, G]: written, its game still running (outcome unknown)
    cursor: jax.Array  # int32[]: the next row to write

    @property
    def capacity(self) -> int:
        return self.complete.size


@struct.dataclass
class Batch:
    observation: jax.Array  # float32[N, rows, cols, planes]
    policy_target: jax.Array  # float32[N, A]
    legal_action_mask: jax.Array  # bool[N, A]
    value_target: jax.Array  # float32[N]


def init(game: Game, capacity: int, games: int) -> ReplayBuffer:
    """An empty buffer of at least `capacity` positions (rounded up to whole rows of `games`)."""
    rows = -(-capacity // games)
    return ReplayBuffer(
        observation=jnp.zeros((rows, games, *game.observation_shape), jnp.uint8),
        policy_target=jnp.zeros((rows, games, game.num_actions), jnp.float32),
        legal_action_mask=jnp.zeros((rows, games, game.num_actions), jnp.bool_),
        value_target=jnp.zeros((rows, games), jnp.float32),
        player=jnp.zeros((rows, games), jnp.int8),
        complete=jnp.zeros((rows, games), jnp.bool_),
        pending=jnp.zeros((rows, games), jnp.bool_),
        cursor=jnp.int32(0),
    )


def _reward_of(rewards: jax.Array, player: jax.Array) -> jax.Array:
    """rewards[..., player]: `rewards` [..., 2] broadcast against `player` [...]."""
    return jnp.where(player == 0, rewards[..., 0], rewards[..., 1])


def _outcomes(trajectory: Trajectory) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Value targets within a chunk, by a backward pass over its moves.

    Returns (value_target [T, G], known [T, G], first_rewards [G, 2], first_known [G]): the
    last two are the outcome of the first game to end in each column, which is also the outcome
    of that column's positions from earlier chunks still waiting for one.
    """

    def backward(carry, move):
        rewards, known = carry  # [G, 2], [G]
        rewards = jnp.where(move.terminated[:, None], move.rewards, rewards)
        known = known | move.terminated
        value = _reward_of(rewards, move.player)
        return (rewards, known), (value, known)

    games = trajectory.player.shape[1]
    start = (jnp.zeros((games, 2), jnp.float32), jnp.zeros(games, jnp.bool_))
    (first_rewards, first_known), (value, known) = jax.lax.scan(
        backward, start, trajectory, reverse=True
    )
    return value, known, first_rewards, first_known


def add(buffer: ReplayBuffer, trajectory: Trajectory) -> ReplayBuffer:
    """Writes a chunk of T moves (T <= rows) and completes the value targets it decides."""
    value, known, first_rewards, first_known = _outcomes(trajectory)
    # Positions still waiting for an outcome belong to each column's game in progress when the
    # chunk began; the first game to end in the chunk is that game.
    waiting = buffer.pending & first_known[None, :]  # [R, G]
    finished_value = _reward_of(first_rewards[None], buffer.player)  # [R, G]
    buffer = buffer.replace(
        value_target=jnp.where(waiting, finished_value, buffer.value_target),
        complete=buffer.complete | waiting,
        pending=buffer.pending & ~waiting,
    )
    moves = trajectory.player.shape[0]
    rows = (buffer.cursor + jnp.arange(moves)) % buffer.player.shape[0]  # [T]
    return buffer.replace(
        observation=buffer.observation.at[rows].set(trajectory.observation),
        policy_target=buffer.policy_target.at[rows].set(trajectory.policy_target),
        legal_action_mask=buffer.legal_action_mask.at[rows].set(trajectory.legal_action_mask),
        value_target=buffer.value_target.at[rows].set(value),
        player=buffer.player.at[rows].set(trajectory.player),
        complete=buffer.complete.at[rows].set(known),
        pending=buffer.pending.at[rows].set(~known),
        cursor=(buffer.cursor + moves) % buffer.player.shape[0],
    )


def sampleable(buffer: ReplayBuffer, window: int) -> jax.Array:
    """bool[R, G]: complete positions among the newest `window` (0 = all) positions."""
    rows, games = buffer.complete.shape
    age = (buffer.cursor - 1 - jnp.arange(rows)) % rows  # [R]: 0 = the newest row
    window_rows = rows if window == 0 else -(-window // games)
    return buffer.complete & (age < window_rows)[:, None]


def size(buffer: ReplayBuffer) -> jax.Array:
    """int32[]: positions that can be sampled now."""
    return jnp.sum(buffer.complete, dtype=jnp.int32)


def sampling_table(buffer: ReplayBuffer, window: int) -> jax.Array:
    """int32[R * G]: the running count of sampleable positions (`window` as in `sampleable`),
    row-major over the global buffer. Built once per training chunk: the buffer does not change
    while it trains."""
    return jnp.cumsum(sampleable(buffer, window).reshape(-1), dtype=jnp.int32)


def partition_spec(axis: str) -> ReplayBuffer:
    """How a buffer splits over the mesh axis `axis`: by game columns; the cursor is shared."""
    columns = PartitionSpec(None, axis)
    return ReplayBuffer(observation=columns, policy_target=columns, legal_action_mask=columns,
                        value_target=columns, player=columns, complete=columns, pending=columns,
                        cursor=PartitionSpec())


def sample(
    game: Game, buffer: ReplayBuffer, table: jax.Array, key: jax.Array, batch_size: int, *,
    augment: bool, mesh: Mesh | None = None,
) -> Batch:
    """`batch_size` positions drawn uniformly (with replacement) from the sampleable ones.

    `table` is `sampling_table(buffer, window)`; the buffer must hold at least one sampleable
    position (the loop checks before training). Positions are picked by global index, so the
    same key draws the same batch whether the buffer lives on one device or is split over
    `mesh`'s data axis (`partition_spec`); then each device receives its slice of the batch.
    With `augment`, each position gets one of the game's symmetries at random.
    """
    pick_key, symmetry_key = jax.random.split(key)
    games = buffer.complete.shape[1]
    draw = jax.random.randint(pick_key, (batch_size,), 0, table[-1])  # [N]
    row, column = jnp.divmod(jnp.searchsorted(table, draw, side="right"), games)  # [N], [N]
    fields = (buffer.observation, buffer.policy_target, buffer.legal_action_mask,
              buffer.value_target)
    if mesh is None:
        observation, policy, legal, value = (leaf[row, column] for leaf in fields)
    else:
        axis = mesh.axis_names[0]
        observation, policy, legal, value = jax.shard_map(
            functools.partial(_gather_split, axis), mesh=mesh,
            in_specs=(PartitionSpec(None, axis), PartitionSpec(), PartitionSpec()),
            out_specs=PartitionSpec(axis),
        )(fields, row, column)
    observation = observation.astype(jnp.float32)
    if augment:
        index = jax.random.randint(symmetry_key, (batch_size,), 0, game.num_symmetries)
        observation, policy, legal = jax.vmap(game.symmetry)(index, observation, policy, legal)
    return Batch(observation, policy, legal, value)


def _gather_split(axis: str, fields, row: jax.Array, column: jax.Array):
    """Inside shard_map: this device's slice of the positions at global (`row`, `column`).

    Each device takes the positions that live in its columns and zeros elsewhere; a sum over
    devices that leaves each its own slice (`psum_scatter`) completes them, moving only the
    batch, never the buffer.
    """
    local_games = fields[0].shape[1]
    first = jax.lax.axis_index(axis) * local_games
    mine = (column >= first) & (column < first + local_games)  # [N]
    local_column = jnp.clip(column - first, 0, local_games - 1)

    def take(leaf):
        picked = leaf[row, local_column]
        kept = jnp.where(mine.reshape(-1, *[1] * (picked.ndim - 1)), picked, 0)
        # psum has no boolean form: legal masks travel as uint8.
        summed = jax.lax.psum_scatter(kept.astype(jnp.uint8) if leaf.dtype == jnp.bool_ else kept,
                                      axis, scatter_dimension=0, tiled=True)
        return summed.astype(leaf.dtype)

    return tuple(take(leaf) for leaf in fields)
