"""The Elo ladder: matches among models and named opponents, rated together (elo.py).

    models = models_to_rate(["site/models/connect4"], ["data/runs/connect4"])
    result = rate(game, opponents=["random", "greedy"], models=models, simulations=64,
                  games=50, key=key)   # or play_ladder(game, players, ...)
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
from etils import epath

from cartridge_jax._files import atomic_write_text
from cartridge_jax.evaluation import agents, arena, elo
from cartridge_jax.games import Game
from cartridge_jax.opponents import builtin_agent
from cartridge_jax.run import checkpoint

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


def models_to_rate(models: Sequence[str], snapshot_runs: Sequence[str]) -> dict[str, epath.Path]:
    """{name: path} of the model paths given and of every snapshot of `snapshot_runs` (named
    iter_<N>, prefixed by the run's folder when there are several runs); ValueError if none."""
    found = {name: epath.Path(name) for name in models}
    for run_dir in snapshot_runs:
        snapshots = checkpoint.snapshots(run_dir)
        if not snapshots:
            raise ValueError(f"no snapshots in {run_dir}/{checkpoint.SNAPSHOT_DIR}: train with "
                             "training.snapshot_interval > 0")
        prefix = f"{epath.Path(run_dir).name}/" if len(snapshot_runs) > 1 else ""
        found.update({f"{prefix}iter_{iteration}": path for iteration, path in snapshots.items()})
    if not found:
        raise ValueError("nothing to rate: name models (--models) or a run directory with "
                         "snapshots (--snapshots)")
    return found


def rate(game: Game, *, opponents: Sequence[str], models: Mapping[str, epath.Path],
         simulations: int, games: int, key: jax.Array,
         round_robin: bool = False, progress: Callable[[str], None] = lambda line: None) -> dict:
    """`play_ladder` over the named `opponents` (the anchor always in, first) and `models`
    (played by the agent's search at `simulations`); the result records the simulations."""
    names = [name.strip() for name in opponents if name.strip()]
    names = [ANCHOR, *(name for name in names if name != ANCHOR)]
    players = {name: builtin_agent(game, name) for name in names}
    for name, path in models.items():
        players[name], _ = agents.load_agent(game, path, simulations=simulations)
    result = play_ladder(game, players, models=list(models), games=games, key=key,
                         round_robin=round_robin, progress=progress)
    return {**result, "simulations": simulations}


def ratings_table(result: Mapping) -> str:
    """The result's players as a text table (elo.table's layout)."""
    return elo.table({p["name"]: elo.Rating(p["elo"], p["elo_se"], p["games"], p["score"])
                      for p in result["players"]})


def write_json(path, result: Mapping) -> None:
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
