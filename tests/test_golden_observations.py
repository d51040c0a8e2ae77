"""Exact `observe()` tensors for fixed positions, written by hand from the documented layouts.

Any change to an observation encoding fails here: then bump the game's `encoding_version` (shipped
models check it) and update these tensors together.
"""

import jax
import numpy as np
import pytest

from cartridge_jax import games

# Per case: game, the moves from the start (names as in action_from_text), the encoding version
# this was written for, and the two planes drawn row by row ("#" = 1): plane 0 holds the side to
# move's pieces, plane 1 the opponent's. Row 0 is the top row of each game's diagram.
CASES = [
    ("tictactoe", ["a1", "b2"], 1,  # X to move
     ["#..", "...", "..."],
     ["...", ".#.", "..."]),
    ("tictactoe", ["a1", "b2", "c1"], 1,  # O to move
     ["...", ".#.", "..."],
     ["#.#", "...", "..."]),
    ("connect4", ["4", "4", "5", "3"], 1,  # Red to move; pieces fall to the bottom (row 5)
     [".......", ".......", ".......", ".......", ".......", "...##.."],
     [".......", ".......", ".......", ".......", "...#...", "..#...."]),
    ("connect4", ["1"], 1,  # Yellow to move
     [".......", ".......", ".......", ".......", ".......", "......."],
     [".......", ".......", ".......", ".......", ".......", "#......"]),
    ("othello", [], 1,  # Black to move: black on d5 and e4, white on d4 and e5
     ["........", "........", "........", "....#...", "...#....", "........", "........", "........"],
     ["........", "........", "........", "...#....", "....#...", "........", "........", "........"]),
    ("othello", ["d3"], 1,  # White to move; d3 flipped d4
     ["........", "........", "........", "........", "....#...", "........", "........", "........"],
     ["........", "........", "...#....", "...##...", "...#....", "........", "........", "........"]),
]


@pytest.mark.parametrize("name, moves, version, own, theirs", CASES)
def test_golden_observation(name, moves, version, own, theirs):
    game = games.make(name)
    assert game.encoding_version == version, "encoding changed: update the golden tensors"
    state = game.init(jax.random.key(0))
    for move in moves:
        state = game.step(state, game.action_from_text(move))
    expected = np.stack([[[c == "#" for c in row] for row in plane] for plane in (own, theirs)],
                        axis=-1).astype(np.float32)
    assert np.array_equal(np.asarray(game.observe(state)), expected)
