"""Self-play: G games at once, `vmap` over games inside a `lax.scan` over moves.

Finished games restart in place (auto-reset) so the batch never idles. Each restart begins with
up to `selfplay.random_opening_moves` uniformly random moves: without them small games collapse
into one deterministic line and the net never sees the rest of the game.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from cartridge_jax import search
from cartridge_jax.config import MctsConfig
from cartridge_jax.games import Game, State, baselines
from cartridge_jax.games.base import where_batched
from cartridge_jax.replay import Trajectory


@struct.dataclass
class Games:
    """The self-play batch carried from chunk to chunk."""

    state: State  # [G]
    move_number: jax.Array  # int32[G]: moves made in each game so far (openings included)


def new_games(game: Game, key: jax.Array, games: int, opening_moves: int) -> Games:
    """`games` fresh games, each after 0..`opening_moves` uniformly random moves (uniform count).

    The count varies so that the start position and every early ply still get searched and
    learned. A game that the random moves would end (only possible in tiny games) starts empty.
    """
    init_key, count_key, move_key = jax.random.split(key, 3)
    start = jax.vmap(game.init)(jax.random.split(init_key, games))
    counts = jax.random.randint(count_key, (games,), 0, opening_moves + 1)  # [G]

    def random_move(i, state):
        keys = jax.random.split(jax.random.fold_in(move_key, i), games)
        moved = jax.vmap(game.step)(state, jax.vmap(baselines.random_action)(keys, state))
        return where_batched(i < counts, moved, state)

    opened = jax.lax.fori_loop(0, opening_moves, random_move, start)
    state = where_batched(opened.terminated, start, opened)
    moves = jnp.where(opened.terminated, 0, counts).astype(jnp.int32)
    return Games(state=state, move_number=moves)


def play(
    game: Game,
    apply_fn: search.ApplyFn,
    mcts: MctsConfig,
    opening_moves: int,
    params,
    games: Games,
    key: jax.Array,
    moves: int,
) -> tuple[Games, Trajectory]:
    """`moves` self-play moves of every game; returns the new batch and a `[moves, G]` chunk."""
    num_games = games.move_number.shape[0]

    def move(games: Games, key: jax.Array):
        search_key, reset_key = jax.random.split(key)
        state = games.state
        result = search.selfplay_search(
            game, apply_fn, mcts, params, search_key, state, games.move_number
        )
        next_state = jax.vmap(game.step)(state, result.action)
        record = Trajectory(
            observation=jax.vmap(game.observe)(state).astype(jnp.uint8),
            policy_target=result.policy_target,
            legal_action_mask=state.legal_action_mask,
            player=state.current_player.astype(jnp.int8),
            terminated=next_state.terminated,
            rewards=next_state.rewards,
        )
        fresh = new_games(game, reset_key, num_games, opening_moves)
        continued = Games(state=next_state, move_number=games.move_number + 1)
        return where_batched(next_state.terminated, fresh, continued), record

    return jax.lax.scan(move, games, jax.random.split(key, moves))
