"""Matches between two batched agents, on the device: W/D/L with colours alternating.

An agent here is `(key, states [B]) -> actions int32[B]`: a named opponent (opponents.py) or
the search agent over a batch. The agent plays the first player in the first half of the games
and the second player in the other half. Every game starts from the same position and the
sides alternate every ply (an Othello pass is a ply), so at each ply the agent is to move in
one half and its opponent in the other: each is asked for the moves of its half only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from cartridge_jax import opponents
from cartridge_jax.games import Game

BatchAgent = Callable[[jax.Array, object], jax.Array]


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """Results from the first agent's view."""

    wins: int
    draws: int
    losses: int

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        """Points per game: a win 1, a draw 1/2."""
        return (self.wins + 0.5 * self.draws) / self.games

    def score_interval(self, z: float = 1.96) -> tuple[float, float]:
        """95% Wilson interval of the score (draws as half points)."""
        n, p = self.games, self.score
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


def baseline(game: Game, name: str) -> BatchAgent:
    """The named opponent (opponents.py) that is not a model, e.g. "random" or "alphabeta:3"."""
    return opponents.builtin_agent(game, name)


def play(game: Game, agent: BatchAgent, opponent: BatchAgent, games: int, key: jax.Array):
    """int32[3] (wins, draws, losses) of `agent` over `games` games (even: half as each colour).

    Pure and jittable (close over parameters); the loop runs until every game has ended.
    """
    half = games // 2
    seat = (jnp.arange(games) >= half).astype(jnp.int32)  # [B]: the agent's player id
    init_key, key = jax.random.split(key)
    states = jax.vmap(game.init)(jax.random.split(init_key, games))

    def not_done(carry):
        return ~jnp.all(carry[0].terminated)

    def ply(carry):
        states, score, key, mover = carry  # mover: the player to move in every live game
        key, agent_key, opponent_key = jax.random.split(key, 3)
        halves = jax.tree.map(lambda x: x.reshape(2, half, *x.shape[1:]), states)
        agent_actions = agent(agent_key, jax.tree.map(lambda x: x[mover], halves))  # [B/2]
        opponent_actions = opponent(opponent_key, jax.tree.map(lambda x: x[1 - mover], halves))
        actions = jnp.where(mover == 0, jnp.concatenate([agent_actions, opponent_actions]),
                            jnp.concatenate([opponent_actions, agent_actions]))
        states = jax.vmap(game.step)(states, actions)
        # Rewards are non-zero only on the step that ends a game: collect them as they come.
        score = score + jnp.where(seat == 0, states.rewards[:, 0], states.rewards[:, 1])
        return states, score, key, 1 - mover

    start = (states, jnp.zeros(games), key, jnp.int32(0))
    _, score, _, _ = jax.lax.while_loop(not_done, ply, start)
    return jnp.stack([jnp.sum(score > 0), jnp.sum(score == 0), jnp.sum(score < 0)]).astype(jnp.int32)


def result(counts) -> MatchResult:
    wins, draws, losses = (int(c) for c in counts)
    return MatchResult(wins, draws, losses)
