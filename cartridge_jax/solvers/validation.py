"""Held-out validation positions labelled by this package's exact solvers.

Settings and checkpoints are chosen on these, not on the public reference sets (which are
reported, not tuned to). Each set is drawn from uniformly random play at one stage of the game,
keeps only positions where a move can be a mistake (some legal move's result is worse than the
best one's: a position where every move wins, or every move loses, measures nothing), and leaves
out every position of the public sets and their mirror images.

    connect4_set("end", 1000, seed=0)   # Pons-format lines: {"moves", "score", "move_scores"}
    othello_set(500, seed=0)            # Edax .obf lines: "<position> X; G8:+18; H1:+12; ..."
"""

from __future__ import annotations

import json
import pathlib
from typing import Callable, Iterator

import numpy as np

from cartridge_jax.solvers import connect4, othello

# Stones on the board per stage, as the public Pons sets split them (begin <= 14 < middle <= 28
# < end); the end stops at 40 so that at least two columns' worth of cells are left.
CONNECT4_STAGES = {"begin": (6, 14), "middle": (15, 28), "end": (29, 40)}
# Empty squares of the Othello endgame positions: the public FForum 1-19 set has 14-16, solved
# in well under a second each; these take a few hundredths.
OTHELLO_EMPTIES = (10, 14)


def connect4_set(stage: str, count: int, *, seed: int, node_budget: int = 3_000_000,
                 excluded: set[int] = frozenset(),
                 progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """`count` distinct decisive positions of `stage` with exact per-move scores, in Pons'
    format (1-based column keys). A position whose moves need more than `node_budget` nodes is
    skipped: the begin stage keeps the easier part (the share skipped is reported by
    `progress(kept, skipped)` after each position tried). `excluded`: position keys to leave
    out (`connect4_key`)."""
    if stage not in CONNECT4_STAGES:
        raise ValueError(f"unknown stage {stage!r}: use one of {', '.join(CONNECT4_STAGES)}")
    solver = connect4.Solver(node_budget)
    rng = np.random.default_rng(seed)
    seen = set(excluded)
    lines, skipped = [], 0
    for moves in _random_positions(rng, *CONNECT4_STAGES[stage]):
        key = connect4_key(moves)
        if key in seen:
            continue
        seen.add(key)
        seen.add(connect4_key(mirrored(moves)))
        try:
            scores = solver.move_scores(moves)
        except connect4.BudgetExceeded:
            skipped += 1
        else:
            signs = {np.sign(score) for score in scores.values()}
            if len(signs) > 1:
                lines.append({"moves": moves, "score": max(scores.values()),
                              "move_scores": {str(c + 1): s for c, s in scores.items()}})
        if progress:
            progress(len(lines), skipped)
        if len(lines) == count:
            return lines
    raise AssertionError("unreachable: random play never runs out")


def _random_positions(rng: np.random.Generator, low: int, high: int) -> Iterator[str]:
    """Move strings of live positions after a uniform number of plies in [low, high], each
    from a uniformly random game (a game that ends earlier is started again)."""
    while True:
        plies = int(rng.integers(low, high + 1))
        moves = ""
        while len(moves) < plies:
            open_columns = [c for c in "1234567" if moves.count(c) < connect4.HEIGHT]
            candidate = moves + str(rng.choice(open_columns))
            try:
                connect4.position(candidate)
            except ValueError:  # four in a row: this game is over
                break
            moves = candidate
        if len(moves) == plies:
            yield moves


def mirrored(moves: str) -> str:
    return moves.translate(str.maketrans("1234567", "7654321"))


def connect4_key(moves: str) -> int:
    """A number that names the position (not the order of its moves)."""
    current, mask, _ = connect4.position(moves)
    return int(current) + int(mask)


def connect4_keys(paths) -> set[int]:
    """Keys of every position in Pons-format files, and of their mirror images."""
    keys = set()
    for path in paths:
        for text in pathlib.Path(path).read_text().splitlines():
            if text.strip():
                moves = json.loads(text)["moves"]
                keys.update((connect4_key(moves), connect4_key(mirrored(moves))))
    return keys


def othello_set(count: int, *, seed: int, excluded: set[str] = frozenset(),
                progress: Callable[[int, int], None] | None = None) -> list[str]:
    """`count` distinct endgame positions with OTHELLO_EMPTIES empty squares from uniformly
    random play, decisive (some move wins or draws where another does not), as Edax .obf
    lines (every legal move with its exact final disc difference, best first). `excluded`:
    position texts to leave out (the public sets' positions)."""
    rng = np.random.default_rng(seed)
    seen = set(excluded)
    lines = []
    while len(lines) < count:
        text = _random_endgame(rng, int(rng.integers(OTHELLO_EMPTIES[0],
                                                     OTHELLO_EMPTIES[1] + 1)))
        if text is None or text in seen:
            continue
        seen.add(text)
        scores = othello.move_scores(text)
        if len({np.sign(score) for score in scores.values()}) > 1:
            ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
            lines.append(f"{text};" + "".join(f" {_square_name(square)}:{score:+d};"
                                              for square, score in ranked))
        if progress:
            progress(len(lines), 0)
    return lines


def _random_endgame(rng: np.random.Generator, empties: int) -> str | None:
    """The position with `empties` empty squares of a uniformly random game, the side to move
    having a move; None if the game ends first or stops at a pass."""
    black, white = 0x0000000810000000, 0x0000001008000000  # e4, d5 black; d4, e5 white
    black_to_move = True
    while othello.SQUARES - bin(black | white).count("1") > empties:
        own, opponent = (black, white) if black_to_move else (white, black)
        squares = othello.legal_squares(own, opponent)
        if squares:
            own, opponent = othello.played(own, opponent, int(rng.choice(squares)))
            black, white = (own, opponent) if black_to_move else (opponent, own)
        elif not othello.legal_squares(opponent, own):
            return None  # neither side can move: over
        black_to_move = not black_to_move
    own, opponent = (black, white) if black_to_move else (white, black)
    if not othello.legal_squares(own, opponent):
        return None
    return othello.position_text(black, white, black_to_move)


def _square_name(square: int) -> str:
    return "ABCDEFGH"[square % 8] + str(square // 8 + 1)


def othello_texts(paths) -> set[str]:
    """The position texts of every line of Edax .obf files."""
    return {" ".join(line.split(";")[0].split()) for path in paths
            for line in pathlib.Path(path).read_text().splitlines() if line.strip()}
