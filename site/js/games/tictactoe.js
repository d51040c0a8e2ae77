// TicTacToe on a 3x3 board, X (player 0) first: the rules of cartridge_jax/games/tictactoe.py.
//
// Cells and actions are row-major, row 0 at the top; moves are named column letter + row:
//     a1 | b1 | c1        0 | 1 | 2
//     a2 | b2 | c2        3 | 4 | 5
//     a3 | b3 | c3        6 | 7 | 8
// Three in a row wins; a full board without a line is a draw.

import { cellAt, completesLine, defineGame, emptyBoardState, linesThroughEachCell, outcomeRewards } from './base.js';

const ROWS = 3;
const COLS = 3;
const NUM_ACTIONS = 9;
const LINES_THROUGH = linesThroughEachCell(ROWS, COLS, 3);

function init() {
  return emptyBoardState(ROWS * COLS, NUM_ACTIONS);
}

function applyLegalMove(state, action) {
  const mover = state.currentPlayer;
  const board = Int8Array.from(state.board);
  board[action] = mover + 1;
  const won = completesLine(board, action, mover + 1, LINES_THROUGH);
  const terminated = won || board.every((c) => c !== 0);
  return {
    board,
    currentPlayer: 1 - mover,
    legal: Uint8Array.from(board, (c) => (c === 0 && !terminated ? 1 : 0)),
    terminated,
    rewards: terminated ? outcomeRewards(won ? mover : -1) : [0, 0],
  };
}

function actionToText(action) {
  if (!(Number.isInteger(action) && action >= 0 && action < NUM_ACTIONS)) {
    throw new Error(`${action} is not a TicTacToe action: use 0-8`);
  }
  return 'abc'[action % COLS] + String(Math.floor(action / COLS) + 1);
}

function actionFromText(text) {
  const name = String(text).trim().toLowerCase();
  if (!/^[abc][123]$/.test(name)) {
    throw new Error(`'${text}' is not a TicTacToe cell: use a column a-c and a row 1-3, e.g. b2`);
  }
  return (Number(name[1]) - 1) * COLS + 'abc'.indexOf(name[0]);
}

export const game = defineGame({
  name: 'tictactoe',
  displayName: 'TicTacToe',
  numActions: NUM_ACTIONS,
  rows: ROWS,
  cols: COLS,
  encodingVersion: 1,
  playerNames: ['X', 'O'],
  passAction: null,
  init,
  applyLegalMove,
  actionToText,
  actionFromText,
  actionOfCell: (row, col) => cellAt(ROWS, COLS, row, col),
});
