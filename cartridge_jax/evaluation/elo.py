"""Elo ratings from match results: the Bradley-Terry model, fitted by maximum likelihood.

The expected score of A against B is 1 / (1 + 10 ** ((R_B - R_A) / 400)); a draw counts as half
a win for each side. `fit` finds the ratings that make the observed scores most likely, with one
player (the anchor, normally "random") at 0:

    ratings = fit({("alphabeta:3", "random"): (48, 1, 1), ("model", "alphabeta:3"): (30, 5, 15)})
    ratings["model"].elo, ratings["model"].elo_se

A player that won or lost every game has no finite maximum-likelihood rating, so each pair that
met gets `prior_draws` virtual drawn games (1 by default; 0 for the plain maximum likelihood):
a small pull towards equal ratings that keeps every rating finite.

The solver is the minorization-maximization iteration of Hunter (2004), "MM algorithms for
generalized Bradley-Terry models": each player's strength becomes its score divided by the
sum, over its games, of 1 / (its strength + the opponent's); it increases the likelihood at
every step and converges to the unique maximum of a connected set of players.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

ELO_PER_NATURAL_UNIT = 400.0 / math.log(10.0)  # Elo points per unit of log-strength


@dataclasses.dataclass(frozen=True)
class Rating:
    elo: float  # relative to the anchor, which is 0
    elo_se: float  # standard error from the likelihood's curvature (0 for the anchor)
    games: int  # real games played (no virtual draws)
    score: float  # points per game: a win 1, a draw 1/2


Results = Mapping[tuple[str, str], tuple[int, int, int]]  # (a, b) -> a's (wins, draws, losses)


def fit(results: Results, *, anchor: str = "random", prior_draws: float = 1.0,
        tolerance: float = 1e-10, max_iterations: int = 100_000) -> dict[str, Rating]:
    """Ratings of every player in `results`, `anchor` at 0.

    ValueError (one line) when the anchor never played or a player is not linked to it by
    games (a chain of pairs that met).
    """
    players = sorted({name for pair in results for name in pair})
    if anchor not in players:
        raise ValueError(f"the anchor {anchor!r} played no games: include it in the matches")
    index = {name: i for i, name in enumerate(players)}
    count = len(players)
    games = np.zeros((count, count))  # games[i, j]: games between i and j, both ways
    points = np.zeros((count, count))  # points[i, j]: i's points against j
    for (a, b), (wins, draws, losses) in results.items():
        i, j = index[a], index[b]
        games[i, j] += wins + draws + losses
        games[j, i] += wins + draws + losses
        points[i, j] += wins + draws / 2
        points[j, i] += losses + draws / 2
    _check_connected(players, games, index[anchor])

    met = games > 0
    prior_games = games + prior_draws * met
    prior_points = points + prior_draws / 2 * met
    total_points = prior_points.sum(axis=1)  # [P]
    strength = np.ones(count)
    for _ in range(max_iterations):
        denominators = (prior_games / (strength[:, None] + strength[None, :])).sum(axis=1)
        updated = total_points / denominators
        updated /= updated[index[anchor]]
        # A player with no points would go to strength 0 (rating -inf); only without a prior.
        updated = np.maximum(updated, np.finfo(float).tiny)
        change = np.max(np.abs(np.log(updated) - np.log(strength)))
        strength = updated
        if change < tolerance:
            break
    log_strength = np.log(strength)
    elo_se = _standard_errors(log_strength, prior_games, index[anchor])
    played = games.sum(axis=1)
    return {
        name: Rating(
            elo=float(ELO_PER_NATURAL_UNIT * log_strength[i]),
            elo_se=float(ELO_PER_NATURAL_UNIT * elo_se[i]),
            games=int(played[i]),
            score=float(points[i].sum() / played[i]) if played[i] else 0.0,
        )
        for name, i in index.items()
    }


def _check_connected(players: list[str], games: np.ndarray, anchor: int) -> None:
    linked, frontier = {anchor}, [anchor]
    while frontier:
        i = frontier.pop()
        for j in np.flatnonzero(games[i] > 0):
            if j not in linked:
                linked.add(int(j))
                frontier.append(int(j))
    if unlinked := [players[i] for i in range(len(players)) if i not in linked]:
        raise ValueError(f"{', '.join(unlinked)} never met {players[anchor]!r} or anyone who "
                         "did: their ratings are undefined; play them against a linked player")


def _standard_errors(log_strength: np.ndarray, games: np.ndarray, anchor: int) -> np.ndarray:
    """Standard errors of the log-strengths (anchor fixed at 0): the inverse of the negative
    log-likelihood's Hessian, whose (i, j) entry is -n_ij p_ij (1 - p_ij) off the diagonal."""
    difference = log_strength[:, None] - log_strength[None, :]
    p = 1.0 / (1.0 + np.exp(-difference))
    information = games * p * (1.0 - p)  # [P, P]
    hessian = np.diag(information.sum(axis=1)) - information
    free = [i for i in range(len(log_strength)) if i != anchor]
    errors = np.zeros(len(log_strength))
    if free:
        covariance = np.linalg.pinv(hessian[np.ix_(free, free)])
        errors[free] = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    return errors


def table(ratings: Mapping[str, Rating]) -> str:
    """The ratings as a text table, strongest first."""
    width = max(len("player"), *(len(name) for name in ratings))
    lines = [f"{'player':<{width}}  {'elo':>7}  {'+-':>5}  {'games':>6}  {'score':>6}"]
    for name, rating in sorted(ratings.items(), key=lambda item: -item[1].elo):
        lines.append(f"{name:<{width}}  {rating.elo:>7.0f}  {rating.elo_se:>5.0f}  "
                     f"{rating.games:>6}  {rating.score:>6.3f}")
    return "\n".join(lines)
