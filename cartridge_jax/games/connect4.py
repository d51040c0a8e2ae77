"""Connect 4 on the standard 7-column x 6-row board. Red (player 0) moves first.

An action is a column 0-6 (named "1".."7" for people, as in Pons' benchmark move strings); the
piece drops to the lowest empty cell. Cells are row-major with row 0 at the TOP, so the board
reads like its picture:

    row 0 (top)      0  1  2  3  4  5  6
    row 1            7  8  9 10 11 12 13
    ...
    row 5 (bottom)  35 36 37 38 39 40 41

Rules: four in a row (horizontal, vertical, diagonal) wins; a full board without one is a draw.
Observation: float32[6, 7, 2]; plane 0 the side to move's pieces, plane 1 the opponent's.
Text format (`from_text`): the moves from the empty board as 1-based column digits ("4453").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cartridge_jax.games import base

ROWS, COLS = 6, 7
NUM_CELLS = ROWS * COLS
NUM_ACTIONS = COLS
ENCODING_VERSION = 1


LINES_THROUGH = base.lines_through_each_cell(ROWS, COLS, 4)  # [42, 16, 4]


State = base.CellBoardState  # board int8[42]: 0 empty, 1 Red (player 0), 2 Yellow (player 1)


def init(key: jax.Array) -> State:
    """The empty board, Red to move. The start is deterministic: `key` is unused."""
    del key
    return base.empty_cell_board(NUM_CELLS, NUM_ACTIONS)


def _apply_legal_move(state: State, action: jax.Array) -> State:
    mover = state.current_player
    piece = (mover + 1).astype(jnp.int8)
    columns = state.board.reshape(ROWS, COLS)
    empty_in_column = jnp.sum(columns[:, action] == 0)  # the piece lands in the lowest of these
    cell = (empty_in_column - 1) * COLS + action
    board = state.board.at[cell].set(piece)
    won = base.completes_line(board, cell, piece, LINES_THROUGH)
    top_row_open = board[:COLS] == 0  # [7]: a column is playable while its top cell is empty
    terminated = won | ~jnp.any(top_row_open)
    return State(
        board=board,
        current_player=1 - mover,
        legal_action_mask=top_row_open & ~terminated,
        terminated=terminated,
        rewards=base.outcome_rewards(jnp.where(won, mover, -1), terminated),
    )


step = base.make_step(_apply_legal_move)


def observe(state: State) -> jax.Array:
    """float32[6, 7, 2]: the side to move's pieces, then the opponent's."""
    return base.piece_planes(state.board, state.current_player, ROWS, COLS)


def greedy_scores(state: State) -> jax.Array:
    return base.threat_scores(step, state)


def action_to_text(action: int) -> str:
    return str(action + 1)


def action_from_text(text: str) -> int:
    text = text.strip()
    if len(text) != 1 or text not in "1234567":
        raise ValueError(f"{text!r} is not a Connect 4 column: use a digit 1-7")
    return int(text) - 1


def from_text(moves: str) -> State:
    """The position after `moves`: 1-based column digits, Red first (Pons' benchmark format)."""
    return base.replay_digit_moves(GAME, moves)


def to_text(state: State) -> str:
    cells = np.asarray(state.board).reshape(ROWS, COLS)
    row_labels = [str(ROWS - r) for r in range(ROWS)]  # counted from the bottom, as people do
    return base.board_text(cells, ".XO", "1234567", row_labels)


GAME = base.Game(
    name="connect4",
    display_name="Connect 4",
    description="Drop pieces into 7 columns; four in a row wins. The first player wins with "
    "perfect play, and only by starting in the centre.",
    num_actions=NUM_ACTIONS,
    observation_shape=(ROWS, COLS, 2),
    rows=ROWS,
    cols=COLS,
    board_kind="drop_column",
    player_names=("Red", "Yellow"),
    player_symbols=("X", "O"),
    encoding_version=ENCODING_VERSION,
    init=init,
    step=step,
    observe=observe,
    greedy_scores=greedy_scores,
    cell_permutations=base.mirror_permutation(ROWS, COLS),
    action_permutations=base.mirror_permutation(1, COLS),
    from_text=from_text,
    to_text=to_text,
    action_to_text=action_to_text,
    action_from_text=action_from_text,
)
