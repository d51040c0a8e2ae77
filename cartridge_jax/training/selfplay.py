"""Self-play: G games at once, `vmap` over games inside a `lax.scan` over moves.

Finished games restart in place (auto-reset) so the batch never idles, taking fresh games from
a pool made once per chunk. Each restart begins with up to
`selfplay.random_opening_moves` uniformly random moves: without them small games collapse
into one deterministic line and the net never sees the rest of the game.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from cartridge_jax.config import MctsConfig
from cartridge_jax.games import Game, State
from cartridge_jax.games.base import index_among, where_batched
from cartridge_jax.model import search
from cartridge_jax.training.replay import Trajectory


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

    def random_move(state, ply):
        index, uniform = ply  # int32[], float32[G]
        action = jax.vmap(index_among)(uniform, state.legal_action_mask)
        return where_batched(index < counts, jax.vmap(game.step)(state, action), state), None

    plies = (jnp.arange(opening_moves), jax.random.uniform(move_key, (opening_moves, games)))
    opened, _ = jax.lax.scan(random_move, start, plies)
    state = where_batched(opened.terminated, start, opened)
    moves = jnp.where(opened.terminated, 0, counts).astype(jnp.int32)
    return Games(state=state, move_number=moves)


def restart_pool_size(games: int, moves: int) -> int:
    """Fresh games prepared per self-play chunk of `moves` moves of `games` games (see `play`):
    enough for every game to restart twice."""
    return max(1, games * moves // 2)


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
    pool_key, key = jax.random.split(key)
    # Games that end take fresh ones in turn from a pool made once per chunk: making openings
    # at every move cost up to 40% of a TicTacToe search of 8 simulations, in per-ply overhead
    # whatever the number of games. Only a chunk whose games last under two moves on average
    # would wrap around the pool (two columns would then begin from the same opening and part
    # ways at their first search).
    pool = new_games(game, pool_key, restart_pool_size(num_games, moves), opening_moves)  # [P]

    def move(carry: tuple[Games, jax.Array], key: jax.Array):
        games, used = carry  # used: int32[], pool games taken so far
        state = games.state
        result = search.selfplay_search(game, apply_fn, mcts, params, key, state,
                                        games.move_number)
        next_state = jax.vmap(game.step)(state, result.action)
        record = Trajectory(
            observation=jax.vmap(game.observe)(state).astype(jnp.uint8),
            policy_target=result.policy_target,
            legal_action_mask=state.legal_action_mask,
            player=state.current_player.astype(jnp.int8),
            terminated=next_state.terminated,
            rewards=next_state.rewards,
        )
        turn = used + jnp.cumsum(next_state.terminated, dtype=jnp.int32) - 1  # [G]
        restarted = jax.tree.map(lambda leaf: leaf[turn % leaf.shape[0]], pool)  # [G]
        continued = Games(state=next_state, move_number=games.move_number + 1)
        games = where_batched(next_state.terminated, restarted, continued)
        return (games, used + jnp.sum(next_state.terminated, dtype=jnp.int32)), record

    (games, _), trajectory = jax.lax.scan(move, (games, jnp.int32(0)),
                                          jax.random.split(key, moves))
    return games, trajectory
