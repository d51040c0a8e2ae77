// Connect 4 on 7 columns x 6 rows, Red (player 0) first: the rules of
// cartridge_jax/games/connect4.py. An action is a column 0-6 (named "1".."7"); the piece drops
// to the lowest empty cell. Cells are row-major with row 0 at the TOP:
//     row 0 (top)      0  1  2  3  4  5  6
//     row 1            7  8  9 10 11 12 13
//     ...
//     row 5 (bottom)  35 36 37 38 39 40 41
// Four in a row wins; a full board without one is a draw.

import { completesLine, defineGame, emptyBoardState, linesThroughEachCell, outcomeRewards } from './base.js';

const ROWS = 6;
const COLS = 7;
const NUM_ACTIONS = COLS;
const LINES_THROUGH = linesThroughEachCell(ROWS, COLS, 4);

function init() {
  return emptyBoardState(ROWS * COLS, NUM_ACTIONS);
}

function applyLegalMove(state, column) {
  const mover = state.currentPlayer;
  const board = Int8Array.from(state.board);
  let row = ROWS - 1;
  while (board[row * COLS + column] !== 0) row--; // legal: the top cell is empty
  const cell = row * COLS + column;
  board[cell] = mover + 1;
  const won = completesLine(board, cell, mover + 1, LINES_THROUGH);
  const topRowOpen = Array.from({ length: COLS }, (_, c) => board[c] === 0);
  const terminated = won || !topRowOpen.some(Boolean);
  return {
    board,
    currentPlayer: 1 - mover,
    legal: Uint8Array.from(topRowOpen, (open) => (open && !terminated ? 1 : 0)),
    terminated,
    rewards: terminated ? outcomeRewards(won ? mover : -1) : [0, 0],
  };
}

function actionToText(action) {
  if (!(Number.isInteger(action) && action >= 0 && action < NUM_ACTIONS)) {
    throw new Error(`${action} is not a Connect 4 action: use a column 0-6`);
  }
  return String(action + 1);
}

function actionFromText(text) {
  const name = String(text).trim();
  if (!/^[1-7]$/.test(name)) {
    throw new Error(`'${text}' is not a Connect 4 column: use a digit 1-7`);
  }
  return Number(name) - 1;
}

function actionOfCell(row, col) {
  const inside = Number.isInteger(row) && Number.isInteger(col) &&
    row >= 0 && row < ROWS && col >= 0 && col < COLS;
  return inside ? col : null; // a click anywhere in a column drops into it
}

export const game = defineGame({
  name: 'connect4',
  displayName: 'Connect 4',
  numActions: NUM_ACTIONS,
  rows: ROWS,
  cols: COLS,
  encodingVersion: 1,
  playerNames: ['Red', 'Yellow'],
  passAction: null,
  init,
  applyLegalMove,
  actionToText,
  actionFromText,
  actionOfCell,
});
