"""One game between two baseline agents, drawn move by move: the rules at work, for newcomers."""

from __future__ import annotations

from typing import TextIO

import jax
import numpy as np

from cartridge_jax.games import Game
from cartridge_jax.opponents import baselines


def play(game: Game, *, agents: tuple[str, str], seed: int, out: TextIO) -> np.ndarray:
    """Plays `agents[0]` (moving first) against `agents[1]`; returns the final rewards [2]."""
    policies = [jax.jit(baselines.make_agent(game, name)) for name in agents]
    step = jax.jit(game.step)
    key = jax.random.key(seed)
    state = game.init(key)
    names = [f"{game.player_names[p]} ({agents[p]})" for p in range(2)]
    print(f"{game.display_name}: {names[0]} vs {names[1]}, seed {seed}\n", file=out)
    print(game.to_text(state), file=out)
    ply = 0
    while not bool(state.terminated):
        key, move_key = jax.random.split(key)
        mover = int(state.current_player)
        action = int(policies[mover](move_key, state))
        state = step(state, action)
        ply += 1
        print(f"\n{ply}. {names[mover]} plays {game.action_to_text(action)}", file=out)
        print(game.to_text(state), file=out)
    rewards = np.asarray(state.rewards)
    if rewards[0] == 0:
        print("\nResult: draw", file=out)
    else:
        winner = int(np.argmax(rewards))
        print(f"\nResult: {names[winner]} wins", file=out)
    return rewards
