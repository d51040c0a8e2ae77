"""Named opponents: the one registry behind `eval --opponent`, `ladder` and `evaluation.opponents`.

    random             a uniformly random legal move
    greedy             win now, else don't hand over a win (Othello: flip the most discs)
    perfect            a random minimax-optimal move (TicTacToe only; exhaustive solver)
    mcts-rollout:<N>   classic MCTS, N simulations valued by random playouts, no network
                       (rollout.py)
    alphabeta:<D>      minimax D plies deep with a classic evaluation per game (minimax.py)
    <path>             a trained model: a run directory or an exported model folder, played
                       by the agent's search (loaded by evaluation.agents.opponent_agent); a path names
                       a folder with a "/" in it (write ./name for a folder here)

Names are parsed by `cartridge_jax.config.opponent_names.parse` (pure data, so the configuration
validates with it); `builtin_agent` builds the batched agent
`(key, states [B]) -> int32[B]` of a name that is not a path, for one game, as a `jax.tree_util.Partial` cached per (game, name): arenas jit over
agents, so one object per opponent means one compilation per opponent.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.tree_util import Partial

from cartridge_jax.config import opponent_names
from cartridge_jax.games import Game
from cartridge_jax.opponents import baselines, minimax, perfect, rollout


@functools.lru_cache(maxsize=None)
def builtin_agent(game: Game, name: str) -> Partial:
    """The batched agent of opponent `name` (not a model path) for `game`."""
    opponent = opponent_names.parse(name)
    if opponent.kind == "model":
        raise ValueError(f"opponent {name!r} is a model path: load it with "
                         "evaluation.agents.opponent_agent")
    if opponent.kind == "perfect":
        if game.name != "tictactoe":
            raise ValueError(f"opponent 'perfect' plays TicTacToe only, not {game.display_name}:"
                             " use alphabeta:<depth> or mcts-rollout:<simulations>")
        return Partial(perfect.perfect_agent(optimal_move_table()))
    if opponent.kind == "mcts-rollout":
        return Partial(rollout.agent(game, opponent.strength))
    if opponent.kind == "alphabeta":
        return Partial(minimax.agent(game, opponent.strength))
    return Partial(functools.partial(_batched, baselines.make_agent(game, opponent.kind)))


def _batched(agent, key: jax.Array, states) -> jax.Array:
    """A one-state agent over a batch, one key each."""
    return jax.vmap(agent)(jax.random.split(key, states.current_player.shape[0]), states)


@functools.lru_cache(maxsize=1)
def optimal_move_table() -> np.ndarray:
    """bool[3**9, 9]: TicTacToe's optimal moves per board (about a second to compute)."""
    return perfect.optimal_move_table()
