"""Matches between two batched agents, on the device: W/D/L with colours alternating.

An agent here is `(key, states [B]) -> actions int32[B]`: the baselines vmapped, or the search
agent over a batch. Both agents are asked for a move every ply and the side to move's is played,
so one compiled loop serves every pair of agents.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from cartridge_jax.games import Game, baselines

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
    """A baseline agent ("random" or "greedy") over a batch."""
    agent = baselines.make_agent(game, name)
    return lambda key, states: jax.vmap(agent)(jax.random.split(key, states.current_player.shape[0]), states)


def play(game: Game, agent: BatchAgent, opponent: BatchAgent, games: int, key: jax.Array):
    """int32[3] (wins, draws, losses) of `agent` over `games` games (even: half as each colour).

    Pure and jittable (close over parameters); the loop runs until every game has ended.
    """
    seat = (jnp.arange(games) >= games // 2).astype(jnp.int32)  # [B]: the agent's player id
    init_key, key = jax.random.split(key)
    states = jax.vmap(game.init)(jax.random.split(init_key, games))

    def not_done(carry):
        return ~jnp.all(carry[0].terminated)

    def ply(carry):
        states, score, key = carry
        key, agent_key, opponent_key = jax.random.split(key, 3)
        mine = states.current_player == seat
        actions = jnp.where(mine, agent(agent_key, states), opponent(opponent_key, states))
        states = jax.vmap(game.step)(states, actions)
        # Rewards are non-zero only on the step that ends a game: collect them as they come.
        score = score + jnp.where(seat == 0, states.rewards[:, 0], states.rewards[:, 1])
        return states, score, key

    _, score, _ = jax.lax.while_loop(not_done, ply, (states, jnp.zeros(games), key))
    return jnp.stack([jnp.sum(score > 0), jnp.sum(score == 0), jnp.sum(score < 0)]).astype(jnp.int32)


def result(counts) -> MatchResult:
    wins, draws, losses = (int(c) for c in counts)
    return MatchResult(wins, draws, losses)
