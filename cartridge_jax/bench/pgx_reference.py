"""The yardstick for self-play: the loop a pgx user would write around pgx's environments.

Everything but the game is what the Trainer's self-play phase uses: the same network module
(its parameters shaped for pgx's observation), the same mctx call (Gumbel MuZero with the same
simulations, considered actions and Gumbel scale), a `lax.scan` over moves with auto-reset, and
a ring of `[rows, games]` records written once per chunk. It has none of our extras: no random
opening moves, and no value targets (a pgx user computes those when sampling).

pgx is a benchmark-only dependency (the `bench` extra), imported only when a comparison asks.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import mctx
from flax import struct

from cartridge_jax.config import ConfigError, MctsConfig
from cartridge_jax.games.base import where_batched
from cartridge_jax.model.search import ApplyFn, masked_logits

PGX_IDS = {"tictactoe": "tic_tac_toe", "connect4": "connect_four", "othello": "othello"}


def make_env(name: str) -> Any:
    """pgx's environment for our game `name`."""
    try:
        import pgx
    except ImportError:
        raise ConfigError('pgx is not installed (the benchmarks compare against it): '
                          'pip install -e ".[bench]", or pass --no-pgx') from None
    return pgx.make(PGX_IDS[name])


@struct.dataclass
class Records:
    """Self-play records, `[T, G]` from one chunk or `[R, G]` in the ring."""

    observation: jax.Array  # bool[..., rows, cols, planes]: pgx's observation before the move
    policy_target: jax.Array  # float32[..., A]: the search's improved policy
    legal_action_mask: jax.Array  # bool[..., A]
    action: jax.Array  # int32[...]: the move played
    reward: jax.Array  # float32[...]: the mover's reward for the move
    terminated: jax.Array  # bool[...]: the move ended the game


@struct.dataclass
class Ring:
    records: Records  # [R, G]
    cursor: jax.Array  # int32[]: the next row to write


def init_ring(env: Any, rows: int, games: int) -> Ring:
    shape, actions = (rows, games), env.num_actions
    return Ring(
        records=Records(
            observation=jnp.zeros((*shape, *env.observation_shape), jnp.bool_),
            policy_target=jnp.zeros((*shape, actions), jnp.float32),
            legal_action_mask=jnp.zeros((*shape, actions), jnp.bool_),
            action=jnp.zeros(shape, jnp.int32),
            reward=jnp.zeros(shape, jnp.float32),
            terminated=jnp.zeros(shape, jnp.bool_),
        ),
        cursor=jnp.int32(0),
    )


def _evaluate(apply_fn: ApplyFn, params, states) -> tuple[jax.Array, jax.Array]:
    """(masked policy logits [B, A], value [B]) of the side to move in `states`."""
    logits, value = apply_fn(params, states.observation.astype(jnp.float32))
    return masked_logits(logits, states.legal_action_mask), value


def _recurrent_fn(env: Any, apply_fn: ApplyFn):
    def recurrent_fn(params, key, action, states):
        del key
        mover = states.current_player  # [B]
        states = jax.vmap(env.step)(states, action)
        logits, value = _evaluate(apply_fn, params, states)
        output = mctx.RecurrentFnOutput(
            reward=states.rewards[jnp.arange(action.shape[0]), mover],
            discount=jnp.where(states.terminated, 0.0, -1.0),
            prior_logits=logits,
            value=jnp.where(states.terminated, 0.0, value),
        )
        return output, states

    return recurrent_fn


def selfplay_chunk(env: Any, apply_fn: ApplyFn, mcts: MctsConfig, moves: int, params,
                   states, ring: Ring, key: jax.Array) -> tuple[Any, Ring]:
    """`moves` self-play moves of every game in `states` [G], written into `ring`."""
    games = states.current_player.shape[0]
    recurrent_fn = _recurrent_fn(env, apply_fn)

    def move(states, key):
        search_key, reset_key = jax.random.split(key)
        logits, value = _evaluate(apply_fn, params, states)
        output = mctx.gumbel_muzero_policy(
            params, search_key,
            mctx.RootFnOutput(prior_logits=logits, value=value, embedding=states),
            recurrent_fn, num_simulations=mcts.simulations,
            invalid_actions=~states.legal_action_mask,
            max_num_considered_actions=mcts.max_considered_actions, gumbel_scale=mcts.gumbel_scale,
        )
        next_states = jax.vmap(env.step)(states, output.action)
        record = Records(
            observation=states.observation,
            policy_target=output.action_weights,
            legal_action_mask=states.legal_action_mask,
            action=output.action,
            reward=next_states.rewards[jnp.arange(games), states.current_player],
            terminated=next_states.terminated,
        )
        fresh = jax.vmap(env.init)(jax.random.split(reset_key, games))
        return where_batched(next_states.terminated, fresh, next_states), record

    states, chunk = jax.lax.scan(move, states, jax.random.split(key, moves))  # chunk: [T, G]
    ring_rows = ring.records.action.shape[0]
    rows = (ring.cursor + jnp.arange(moves)) % ring_rows  # [T]
    records = jax.tree.map(lambda stored, new: stored.at[rows].set(new), ring.records, chunk)
    return states, Ring(records=records, cursor=(ring.cursor + moves) % ring_rows)
