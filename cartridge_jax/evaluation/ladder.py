"""The Elo ladder: matches among models and named opponents, rated together (elo.py).

    players = {"random": ..., "greedy": ..., "iter_10": agent, "iter_20": agent}
    result = play_ladder(game, players, models=["iter_10", "iter_20"], games=50, key=key)
    print(elo.table(...)); write_json(path, result)

Who plays whom (`pairings`): every pair of named opponents (which links them to the anchor,
random), every model against every named opponent, and each model against the next one in the
given order (consecutive snapshots); or, with `round_robin`, every pair.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence

import jax

from cartridge_jax._files import atomic_write_text
from cartridge_jax.evaluation import agents, arena, elo
from cartridge_jax.games import Game

ANCHOR = "random"


def pairings(models: Sequence[str], opponents: Sequence[str], *,
             round_robin: bool = False) -> list[tuple[str, str]]:
    """The matches to play, each pair once."""
    if round_robin:
        return list(itertools.combinations([*opponents, *models], 2))
    return [*itertools.combinations(opponents, 2),
            *((model, opponent) for model in models for opponent in opponents),
            *zip(models, models[1:])]


def play_ladder(game: Game, players: Mapping[str, agents.Agent], *, models: Sequence[str],
                games: int, key: jax.Array, round_robin: bool = False,
                progress: Callable[[str], None] = lambda line: None) -> dict:
    """Plays the pairings of `players` (models: the names in `models`, the rest named
    opponents, the anchor among them) and rates everyone. Returns the JSON-ready result:
    {game, games_per_match, anchor, players: [{name, elo, elo_se, games, score}] strongest
    first, matches: [{a, b, wins, draws, losses}] from a's view}."""
    opponents = [name for name in players if name not in models]
    if ANCHOR not in opponents:
        raise ValueError(f"the ladder needs {ANCHOR!r} among the opponents: it anchors the "
                         "ratings at 0")
    matches = {}
    for index, (a, b) in enumerate(pairings(models, opponents, round_robin=round_robin)):
        outcome = arena.match_summary(game, players[a], players[b], games,
                                       jax.random.fold_in(key, index))
        matches[a, b] = (outcome["wins"], outcome["draws"], outcome["losses"])
        progress(f"{a} vs {b}: W/D/L {'/'.join(map(str, matches[a, b]))}")
    ratings = elo.fit(matches, anchor=ANCHOR)
    ranked = sorted(ratings.items(), key=lambda item: -item[1].elo)
    return {
        "game": game.name,
        "games_per_match": games,
        "anchor": ANCHOR,
        "players": [{"name": name, "elo": r.elo, "elo_se": r.elo_se, "games": r.games,
                     "score": r.score} for name, r in ranked],
        "matches": [{"a": a, "b": b, "wins": w, "draws": d, "losses": l}
                    for (a, b), (w, d, l) in matches.items()],
    }


def ratings_table(result: Mapping) -> str:
    """The result's players as a text table (elo.table's layout)."""
    return elo.table({p["name"]: elo.Rating(p["elo"], p["elo_se"], p["games"], p["score"])
                      for p in result["players"]})


def write_json(path, result: Mapping) -> None:
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
