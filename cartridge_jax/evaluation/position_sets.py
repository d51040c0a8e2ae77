"""Benchmark position sets with external truth, the one owner of the reference sets' names.

    connect4_benchmark(agent, "refdata/connect4/Test_L1_R1.jsonl", key=key)  # mistake_rate, ...
    othello_benchmark(agent, "refdata/othello/fforum-1-19.obf", key=key)     # best_move_rate, ...
    tictactoe_exhaustive(agent, key=key)                                     # optimal_rate, n
    load_benchmark(game, "connect4/Test_L2_R1.jsonl", limit=200).measure(agent, key)  # reusable

`REFERENCE_SETS` names the public sets shipped in `cartridge_jax/refdata` per game (the model
card's suite, reported), `VALIDATION_SETS` the held-out sets in `cartridge_jax/valdata` that
settings and checkpoints are chosen on (labelled by `cartridge_jax.solvers`, in the same
formats); `load_benchmark` reads either by name or any file by path. The measures call the agent in
chunks of a fixed number of positions, so it compiles once per measure. Errors for people (an
unreadable or malformed file, a benchmark of another game) are ValueErrors with one-line
messages.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from importlib import resources
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from cartridge_jax import games as games_lib
from cartridge_jax.evaluation import agents
from cartridge_jax.evaluation.agents import Agent
from cartridge_jax.games.base import Game, State, where_batched
from cartridge_jax.opponents import optimal_move_table, perfect

# Positions per compiled agent call: bounds memory (a search tree per position), not results.
BATCH_SIZE = 256

REFDATA = resources.files("cartridge_jax") / "refdata"
VALDATA = resources.files("cartridge_jax") / "valdata"

# The public reference sets in cartridge_jax/refdata, per game, in the order cards list them.
REFERENCE_SETS = {
    "tictactoe": ("exhaustive",),
    "connect4": tuple(f"connect4/Test_{name}.jsonl" for name in ("L3_R1", "L2_R1", "L1_R1",
                                                                   "L1_R3")),
    "othello": ("othello/fforum-1-19.obf", "othello/fforum-20-39.obf"),
}
# The held-out sets in cartridge_jax/valdata (scripts/make_validation.py, valdata/README.md).
VALIDATION_SETS = {
    "connect4": tuple(f"connect4/Val_{stage}.jsonl" for stage in ("end", "middle", "begin")),
    "othello": ("othello/Val_endgame.obf",),
}


# --- positions from move strings ----------------------------------------------------------------


def digit_moves_array(game: Game, move_strings: Sequence[str]) -> np.ndarray:
    """int32[N, rows * cols]: 0-based actions from 1-based digit strings, -1 past each end.

    For games whose moves are digits (TicTacToe cells, Connect 4 columns); every move fills a
    cell, so rows * cols plies is the longest game and one padded width serves every file.
    """
    width = game.rows * game.cols
    digits = "123456789"[: game.num_actions]
    moves = np.full((len(move_strings), width), -1, np.int32)
    for row, text in enumerate(move_strings):
        if bad := sorted(set(text) - set(digits)):
            raise ValueError(f"move string {row + 1} ({text[:60]!r}) has characters {bad}: "
                             f"{game.display_name} moves are digits 1-{game.num_actions}")
        if len(text) > width:
            raise ValueError(f"move string {row + 1} has {len(text)} moves, more than the "
                             f"{width} cells of {game.display_name}")
        moves[row, : len(text)] = [int(c) - 1 for c in text]
    return moves


@functools.partial(jax.jit, static_argnums=0)
def replay_moves(game: Game, moves: jax.Array) -> tuple[State, jax.Array]:
    """(states [N], ok bool[N]): the positions after `moves` int32[N, T] (-1 = no more moves),
    replayed together from the start. `ok` is False where a move was illegal or came after the
    game had ended (the state is then meaningless)."""
    start = jax.vmap(game.init)(jax.random.split(jax.random.key(0), moves.shape[0]))

    def ply(carry, action):  # action int32[N]
        states, ok = carry
        active = action >= 0
        legal = states.legal_action_mask[jnp.arange(action.shape[0]), jnp.maximum(action, 0)]
        ok = ok & (~active | (legal & ~states.terminated))
        stepped = jax.vmap(game.step)(states, jnp.maximum(action, 0))
        return (where_batched(active, stepped, states), ok), None

    (states, ok), _ = jax.lax.scan(ply, (start, jnp.ones(moves.shape[0], bool)), moves.T)
    return states, ok


# --- Connect 4: Pons' benchmark sets ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PositionSet:
    """Benchmark positions loaded once, to measure any number of agents on."""

    name: str  # e.g. "connect4/Test_L2_R1", "tictactoe/exhaustive"
    states: State  # [N] numpy leaves
    score: Callable[[np.ndarray], dict]  # the agent's moves int32[N] -> its measures, with "n"

    def measure(self, agent: Agent, key: jax.Array, batch_size: int = BATCH_SIZE,
                mesh: Mesh | None = None) -> dict:
        return self.score(agents.actions_in_chunks(agent, self.states, key, batch_size, mesh))


def connect4_benchmark(agent: Agent, positions_file, *, key: jax.Array,
                       batch_size: int = BATCH_SIZE) -> dict:
    """Mistake and score-optimal rates of `agent` on a Pons `.jsonl` set (refdata/README.md).

    A move is a mistake when sign(move_scores[chosen]) < max over legal c of
    sign(move_scores[c]) (it throws away a win or a draw); it is optimal when it reaches the
    maximum score. A move with no listed score (illegal) counts as a mistake.
    Returns {"mistake_rate", "optimal_rate", "n"}.
    """
    return connect4_positions(positions_file).measure(agent, key, batch_size)


def connect4_positions(positions_file, *, limit: int = 0) -> PositionSet:
    """The first `limit` positions (0: all) of a Pons `.jsonl` set; see connect4_benchmark."""
    game = games_lib.make("connect4")
    lines = _read_pons(positions_file)[: limit or None]
    try:
        moves = digit_moves_array(game, [line["moves"] for line in lines])
    except ValueError as error:
        raise ValueError(f"{positions_file}: {error}") from None
    scores = np.full((len(lines), game.num_actions), np.nan)  # [N, 7], NaN = no listed score
    for row, line in enumerate(lines):
        for column, score in line["move_scores"].items():
            scores[row, game.action_from_text(column)] = score

    states = _replayed_states(game, moves, positions_file, BATCH_SIZE)
    if (wrong := np.isnan(scores) == states.legal_action_mask).any():
        number = int(np.argmax(wrong.any(axis=1))) + 1
        raise ValueError(f"{positions_file} line {number}: move_scores must list exactly the "
                         "legal columns")
    best_sign = np.nanmax(np.sign(scores), axis=1)  # [N]
    best_score = np.nanmax(scores, axis=1)

    def score(actions):
        chosen = scores[np.arange(len(lines)), actions]
        mistake = np.isnan(chosen) | (np.sign(chosen) < best_sign)
        return {"mistake_rate": float(mistake.mean()),
                "optimal_rate": float((chosen == best_score).mean()), "n": len(lines)}

    return PositionSet(_set_name(game, positions_file), states, score)


def _read_pons(positions_file) -> list[dict]:
    lines = []
    for number, text in enumerate(_read_lines(positions_file), start=1):
        try:
            line = json.loads(text)
            ok = (isinstance(line["moves"], str) and isinstance(line["move_scores"], dict)
                  and line["move_scores"]
                  and all(c in "1234567" and len(c) == 1 and isinstance(s, int)
                          for c, s in line["move_scores"].items()))
        except (json.JSONDecodeError, KeyError, TypeError):
            ok = False
        if not ok:
            raise ValueError(f"{positions_file} line {number} is not a Connect 4 benchmark line: "
                             'expected {"moves": "4453", "move_scores": {"1": -2, ...}}')
        lines.append(line)
    return lines


def _replayed_states(game: Game, moves: np.ndarray, positions_file, batch_size: int) -> State:
    """The positions of `moves` [N, T], replayed in chunks; a ValueError names an illegal line."""
    chunks, all_ok = [], []
    for start in range(0, len(moves), batch_size):
        states, ok = replay_moves(game, jnp.asarray(agents.padded_rows(moves, start, batch_size)))
        chunks.append(jax.tree.map(np.asarray, states))
        all_ok.append(np.asarray(ok))
    ok = np.concatenate(all_ok)[: len(moves)]
    states = jax.tree.map(lambda *leaves: np.concatenate(leaves)[: len(moves)], *chunks)
    ended = states.terminated | ~ok
    if ended.any():
        number = int(np.argmax(ended)) + 1
        raise ValueError(f"{positions_file} line {number}: its moves are illegal or end the game")
    return states


# --- Othello: FForum endgame positions ----------------------------------------------------------


def othello_benchmark(agent: Agent, obf_file, *, key: jax.Array,
                      batch_size: int = BATCH_SIZE) -> dict:
    """Best-move rate and disc loss of `agent` on an Edax `.obf` file of scored positions.

    Returns {"best_move_rate": share of positions where the chosen move is listed with the best
    score, "mistake_rate": share where it throws away a win or a draw (the sign of its listed
    score is below the best's; an unlisted move counts as a mistake, as in Connect 4's sets),
    "mean_disc_loss": mean of (best listed score - chosen move's listed score) in discs
    over the positions whose chosen move is listed (None if there are none),
    "unknown_move_rate": share whose chosen move is not listed, "n"}.
    """
    return othello_positions(obf_file).measure(agent, key, batch_size)


def othello_positions(obf_file, *, limit: int = 0) -> PositionSet:
    """The first `limit` positions (0: all) of an Edax `.obf` file; see othello_benchmark."""
    game = games_lib.make("othello")
    states, listed = _read_obf(game, obf_file, limit)
    best = [max(scores.values()) for scores in listed]

    def score(actions):
        chosen = [scores.get(int(action)) for action, scores in zip(actions, listed)]
        losses = [b - c for b, c in zip(best, chosen) if c is not None]
        return {
            "best_move_rate": float(np.mean([c == b for b, c in zip(best, chosen)])),
            "mistake_rate": float(np.mean([c is None or np.sign(c) < np.sign(b)
                                           for b, c in zip(best, chosen)])),
            "mean_disc_loss": float(np.mean(losses)) if losses else None,
            "unknown_move_rate": float(np.mean([c is None for c in chosen])),
            "n": len(listed),
        }

    return PositionSet(_set_name(game, obf_file), states, score)


def _read_obf(game: Game, obf_file, limit: int) -> tuple[State, list[dict[int, int]]]:
    """(states [N], per position {action: listed final disc difference, side to move's view})
    of the first `limit` lines (0: all)."""
    states, listed = [], []
    for number, text in enumerate(_read_lines(obf_file)[: limit or None], start=1):
        where = f"{obf_file} line {number}"
        position, *pairs = [field.strip() for field in text.split(";")]
        try:
            state = game.from_text(position)
            scores = {}
            for pair in filter(None, pairs):
                move, score = pair.split(":")
                scores[game.action_from_text(move)] = int(score)
        except ValueError as error:
            raise ValueError(f"{where} is not an Othello position with scored moves "
                             f"('... X; G8:+18; H1:+12;'): {error}") from None
        if not scores:
            raise ValueError(f"{where} lists no scored moves: expected '... X; G8:+18; ...'")
        if illegal := [game.action_to_text(a) for a in scores if not state.legal_action_mask[a]]:
            raise ValueError(f"{where} lists illegal moves {illegal}")
        states.append(state)
        listed.append(scores)
    return jax.tree.map(lambda *leaves: np.stack(leaves), *states), listed


def _read_lines(path) -> list[str]:
    try:
        text = pathlib.Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read positions file {path}: {error}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"positions file {path} holds no positions")
    return lines


# --- TicTacToe: every position against the exhaustive solver ------------------------------------


def tictactoe_exhaustive(agent: Agent, *, key: jax.Array, batch_size: int = BATCH_SIZE) -> dict:
    """{"optimal_rate", "n"}: the share of the 4520 reachable live TicTacToe positions where
    `agent` picks a minimax-optimal move (the solver is independent of the package's rules)."""
    return tictactoe_positions().measure(agent, key, batch_size)


@functools.lru_cache(maxsize=1)
def tictactoe_positions() -> PositionSet:
    """Every reachable live TicTacToe position; see tictactoe_exhaustive."""
    boards = perfect.live_positions()
    states = jax.tree.map(np.asarray, perfect.states_of(games_lib.make("tictactoe"), boards))
    indices = np.asarray(boards) @ (3 ** np.arange(9))  # [N]: the table's base-3 board numbers

    def score(actions):
        in_range = (actions >= 0) & (actions < 9)  # anything else is an illegal move
        optimal = optimal_move_table()[indices, np.clip(actions, 0, 8)] & in_range
        return {"optimal_rate": float(optimal.mean()), "n": len(boards)}

    return PositionSet("tictactoe/exhaustive", states, score)


# --- benchmarks by name -------------------------------------------------------------------------


BENCHMARK_GAMES = {".jsonl": "connect4", ".obf": "othello"}  # file suffix -> its game


def load_benchmark(game: Game, name, *, limit: int = 0) -> PositionSet:
    """The position set `name` for `game`: "exhaustive" (TicTacToe), or a benchmark file, a
    path or one shipped in cartridge_jax/refdata or valdata (e.g. "connect4/Test_L2_R1.jsonl",
    "connect4/Val_end.jsonl"); files cut to their first `limit` positions (0: all)."""
    if name == "exhaustive":
        if game.name != "tictactoe":
            raise ValueError(f"exhaustive evaluation is for TicTacToe only, not "
                             f"{game.display_name}: use a positions file or an opponent")
        return tictactoe_positions()
    path = pathlib.Path(name)
    for shipped in (REFDATA / str(name), VALDATA / str(name)):
        if not path.exists() and shipped.is_file():
            path = pathlib.Path(str(shipped))
    if path.suffix not in BENCHMARK_GAMES:
        raise ValueError(f"positions file {name}: use a Connect 4 .jsonl (Pons) or an "
                         "Othello .obf (FForum) benchmark file")
    file_game = games_lib.make(BENCHMARK_GAMES[path.suffix])
    if file_game is not game:
        raise ValueError(f"positions file {name} holds {file_game.display_name} "
                         f"positions, but the model plays {game.display_name}")
    if game.name == "connect4":
        return connect4_positions(path, limit=limit)
    return othello_positions(path, limit=limit)


def _set_name(game: Game, path) -> str:
    """"connect4/Test_L2_R1" for a file of that name."""
    return f"{game.name}/{pathlib.Path(path).stem}"
