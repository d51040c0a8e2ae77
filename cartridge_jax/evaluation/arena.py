"""Matches between two batched agents, on the device: W/D/L with colours alternating.

    match_summary(game, agent, "alphabeta:3", 100, key)  # wins, ..., score and its interval

An agent here is `(key, states [B]) -> actions int32[B]` (agents.py): a named opponent or the
search agent over a batch. The agent plays the first player in the first half of the games
and the second player in the other half. Every game starts from the same position and the
sides alternate every ply (an Othello pass is a ply), so at each ply the agent is to move in
one half and its opponent in the other: each is asked for the moves of its half only.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec

from cartridge_jax import opponents
from cartridge_jax.evaluation import agents
from cartridge_jax.evaluation.agents import Agent
from cartridge_jax.games import Game
from cartridge_jax.parallel import DATA_AXIS


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


def play(game: Game, agent: Agent, opponent: Agent, games: int, key: jax.Array):
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


def even_games(games: int) -> int:
    """`games` made even (at least 2): a match plays half with each colour."""
    return 2 * max(1, games // 2)


def match_summary(game: Game, agent: Agent, opponent: str | Agent, games: int,
                key: jax.Array) -> dict:
    """`games` games of `agent` against `opponent` (an agent, or the name of a built-in
    opponent), half with each colour.

    Returns {wins, draws, losses, score (a win 1, a draw 1/2, per game), score_low, score_high
    (95% Wilson interval), games}, from the agent's view.
    """
    if games < 2 or games % 2:
        raise ValueError(f"games = {games}: use an even number of 2 or more (half each colour)")
    if isinstance(opponent, str):
        opponent = opponents.builtin_agent(game, opponent)
    outcome = result(match(game, agent, opponent, games, key))
    low, high = outcome.score_interval()
    return {"wins": outcome.wins, "draws": outcome.draws, "losses": outcome.losses,
            "score": outcome.score, "score_low": low, "score_high": high, "games": outcome.games}


def match(game: Game, agent: Agent, opponent: Agent, games: int, key: jax.Array,
          mesh: Mesh | None = None) -> jax.Array:
    """`play` compiled once per game, number of games and pair of agents (as Partials,
    whose parameters are arguments: new parameters reuse the compilation).

    On a `mesh` of several devices each plays `games_per_device(games, devices)` of the games,
    half with each colour, and the counts are summed: a few more games than asked for where
    they do not split evenly.
    """
    mesh = agents.split_over(mesh)
    devices = 1 if mesh is None else mesh.size
    return _match(game, agents.as_partial(agent), agents.as_partial(opponent),
                 games_per_device(games, devices), key, mesh)


def games_per_device(games: int, devices: int) -> int:
    """Each device's share of a match of `games`: the even number that covers them all."""
    return 2 * -(-games // (2 * devices))


@functools.partial(jax.jit, static_argnums=(0, 3, 5))
def _match(game, agent, opponent, games, key, mesh):
    if mesh is None:
        return play(game, agent, opponent, games, key)

    def local(key, agent, opponent):  # this device's games; the counts summed over all
        return jax.lax.psum(play(game, agent, opponent, games, key), DATA_AXIS)

    whole = PartitionSpec()
    return agents.on_each_device(local, mesh, (whole, whole), whole)(key, agent, opponent)
