"""TicTacToe on a 3x3 board. X (player 0) moves first.

Cells and actions are row-major, row 0 at the top; moves are named column letter + row number:

    a1 | b1 | c1        0 | 1 | 2
    a2 | b2 | c2        3 | 4 | 5
    a3 | b3 | c3        6 | 7 | 8

Rules: three in a row (8 lines) wins; a full board without a line is a draw.
Observation: float32[3, 3, 2]; plane 0 the side to move's marks, plane 1 the opponent's.
Text format (`from_text`): the moves from the empty board as cell digits 1-9 ("519" = b2, a1, c3).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cartridge_jax.games import base

ROWS = COLS = 3
NUM_ACTIONS = 9
ENCODING_VERSION = 1

LINES_THROUGH = base.lines_through_each_cell(ROWS, COLS, 3)  # [9, 4, 3]


State = base.CellBoardState  # board int8[9]: 0 empty, 1 X (player 0), 2 O (player 1)


def init(key: jax.Array) -> State:
    """The empty board, X to move. The start is deterministic: `key` is unused."""
    del key
    return base.empty_cell_board(9, NUM_ACTIONS)


def _apply_legal_move(state: State, action: jax.Array) -> State:
    mover = state.current_player
    board = state.board.at[action].set((mover + 1).astype(jnp.int8))
    won = base.completes_line(board, action, mover + 1, LINES_THROUGH)
    full = jnp.all(board != 0)
    terminated = won | full
    return State(
        board=board,
        current_player=1 - mover,
        legal_action_mask=(board == 0) & ~terminated,
        terminated=terminated,
        rewards=base.outcome_rewards(jnp.where(won, mover, -1), terminated),
    )


step = base.make_step(_apply_legal_move)


def observe(state: State) -> jax.Array:
    """float32[3, 3, 2]: the side to move's marks, then the opponent's."""
    return base.piece_planes(state.board, state.current_player, ROWS, COLS)


def greedy_scores(state: State) -> jax.Array:
    return base.threat_scores(step, state)


def action_to_text(action: int) -> str:
    return "abc"[action % COLS] + str(action // COLS + 1)


def action_from_text(text: str) -> int:
    text = text.strip().lower()
    if len(text) != 2 or text[0] not in "abc" or text[1] not in "123":
        raise ValueError(f"{text!r} is not a TicTacToe cell: use a column a-c and a row 1-3, e.g. b2")
    return (int(text[1]) - 1) * COLS + "abc".index(text[0])


def from_text(moves: str) -> State:
    """The position after `moves`: cell digits 1-9 in row-major order, X first."""
    return base.replay_digit_moves(GAME, moves)


def to_text(state: State) -> str:
    cells = np.asarray(state.board).reshape(ROWS, COLS)
    return base.board_text(cells, ".XO", "abc", ["1", "2", "3"])


_SYMMETRIES = base.dihedral_permutations(3)

GAME = base.Game(
    name="tictactoe",
    display_name="TicTacToe",
    description="Three in a row on a 3x3 grid. X moves first; perfect play is a draw.",
    num_actions=NUM_ACTIONS,
    observation_shape=(ROWS, COLS, 2),
    rows=ROWS,
    cols=COLS,
    board_kind="grid",
    player_names=("X", "O"),
    player_symbols=("X", "O"),
    encoding_version=ENCODING_VERSION,
    init=init,
    step=step,
    observe=observe,
    greedy_scores=greedy_scores,
    cell_permutations=_SYMMETRIES,
    action_permutations=_SYMMETRIES,
    from_text=from_text,
    to_text=to_text,
    action_to_text=action_to_text,
    action_from_text=action_from_text,
)
