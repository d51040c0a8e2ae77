"""Writes the fixtures that prove the site's JS rules equal the JAX rules.

    python scripts/write_js_fixtures.py        # rewrites site/tests/fixtures/<game>.json

Each file holds random games played by the JAX rules from the start position, some ending in
an illegal move (a forfeit, including out-of-range actions) and every one stepped a few times
past its end (no-op steps). `node --test site/tests/` replays the actions with
site/js/games/ and compares every state; tests/test_site_js.py checks that the committed files
are exactly what this script writes, so they cannot go stale.

File layout (compact JSON, one object):

    game, display_name, num_actions, rows, cols, observation_shape, encoding_version,
    player_names, pass_action (Othello's 64, else null), action_texts (name of every action)
    trajectories: list of games, each
        actions         [T] ints played (illegal and out-of-range ones included)
        boards          [T + 1] strings, one digit per cell row-major (0 empty, 1/2 player 0/1)
        observations    [T + 1] strings of 0/1, observe() flattened [row][col][plane]
        legal           [T + 1] strings of 0/1, the legal action mask
        current_player  string, one digit per state
        terminated      string of 0/1, one per state
        rewards         [T + 1] pairs [r0, r1]
"""

from __future__ import annotations

import json
import pathlib
import random

import jax
import numpy as np

from cartridge_jax import _files, games
from cartridge_jax.games import othello

FIXTURES_DIR = pathlib.Path(__file__).resolve().parent.parent / "site" / "tests" / "fixtures"
SEED = 0
# Enough games to cover forfeits of both kinds, draws and Othello passes; each file < ~300 KB.
GAMES_PER_FILE = {"tictactoe": 120, "connect4": 40, "othello": 14}
FORFEIT_EVERY = 4  # every 4th game ends in an illegal move at a random ply
STEPS_AFTER_END = 2  # no-op steps after the end, with random (also out-of-range) actions


def fixture_text(game: games.Game, seed: int = SEED) -> str:
    """The fixture file of `game`, deterministic in `seed`."""
    rng = random.Random(f"{game.name}-{seed}")
    step, observe = jax.jit(game.step), jax.jit(game.observe)
    trajectories = []
    for index in range(GAMES_PER_FILE[game.name]):
        forfeit = None
        if index % FORFEIT_EVERY == FORFEIT_EVERY - 1:  # alternate the two kinds of illegal move
            forfeit = ("in range", "out of range")[index // FORFEIT_EVERY % 2]
        trajectories.append(_trajectory(game, step, observe, rng, forfeit=forfeit))
    data = {
        "game": game.name,
        "display_name": game.display_name,
        "num_actions": game.num_actions,
        "rows": game.rows,
        "cols": game.cols,
        "observation_shape": list(game.observation_shape),
        "encoding_version": game.encoding_version,
        "player_names": list(game.player_names),
        "pass_action": othello.PASS if game.name == "othello" else None,
        "action_texts": [game.action_to_text(a) for a in range(game.num_actions)],
        "trajectories": trajectories,
    }
    # One trajectory per line: compact, yet diffs stay readable.
    lines = [json.dumps(t, separators=(",", ":")) for t in data.pop("trajectories")]
    head = json.dumps(data, separators=(",", ":"))[:-1]
    return head + ',"trajectories":[\n' + ",\n".join(lines) + "\n]}\n"


def _trajectory(game, step, observe, rng: random.Random, *, forfeit: str | None) -> dict:
    """One random game from the start; with `forfeit`, an illegal move from a random ply on:
    one "in range" that is not legal now (at the first ply that has one: in Connect 4 only a
    full column is), or one "out of range" (-1 or num_actions)."""
    state = game.init(jax.random.key(0))
    states, actions = [state], []
    forfeit_ply = rng.randrange(game.rows * game.cols // 2) if forfeit else -1
    steps_after_end = 0
    while steps_after_end < STEPS_AFTER_END:
        legal = np.flatnonzero(np.asarray(state.legal_action_mask))
        not_legal = sorted(set(range(game.num_actions)) - set(legal.tolist()))
        if bool(state.terminated):
            action = rng.randrange(-1, game.num_actions + 1)
            steps_after_end += 1
        elif forfeit == "out of range" and len(actions) == forfeit_ply:
            action = rng.choice([-1, game.num_actions])
        elif forfeit == "in range" and len(actions) >= forfeit_ply and not_legal:
            action = rng.choice(not_legal)
        else:
            action = int(rng.choice(legal))
        state = step(state, action)
        states.append(state)
        actions.append(action)
    return {
        "actions": actions,
        "boards": [_board_digits(game, s) for s in states],
        "observations": [_bits(observe(s)) for s in states],
        "legal": [_bits(s.legal_action_mask) for s in states],
        "current_player": "".join(str(int(s.current_player)) for s in states),
        "terminated": "".join(str(int(s.terminated)) for s in states),
        "rewards": [_rewards(s) for s in states],
    }


def _board_digits(game, state) -> str:
    if game.name == "othello":  # bitboards: read the cells from the position text
        squares = othello.position_text(state).split()[0]
        return "".join(str("-XO".index(c)) for c in squares)
    return "".join(str(int(c)) for c in np.asarray(state.board))


def _bits(array) -> str:
    values = np.asarray(array).reshape(-1)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"expected only 0/1 values, got {np.unique(values)}")
    return "".join("1" if v else "0" for v in values)


def _rewards(state) -> list[int]:
    rewards = np.asarray(state.rewards)
    if not np.array_equal(rewards, np.round(rewards)):
        raise ValueError(f"non-integer rewards {rewards}")
    return [int(r) for r in rewards]


def write_fixtures(directory: pathlib.Path = FIXTURES_DIR, seed: int = SEED) -> list[pathlib.Path]:
    """Writes `<game>.json` for every game into `directory`; returns the paths."""
    paths = []
    for name in games.names():
        path = pathlib.Path(directory) / f"{name}.json"
        _files.atomic_write_text(path, fixture_text(games.make(name), seed))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_fixtures():
        print(f"wrote {written} ({written.stat().st_size // 1024} KB)")
