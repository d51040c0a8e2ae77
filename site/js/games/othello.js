// Othello (Reversi) on 8x8, Black (X, player 0) first: the rules of
// cartridge_jax/games/othello.py (which uses bitboards; plain arrays do here).
//
// Squares and actions are row-major, row 1 at the top, column a on the left:
//         a  b  c  d  e  f  g  h
//     1   0  1  2  3  4  5  6  7
//     2   8  9 10 11 12 13 14 15
//     ...
//     8  56 57 58 59 60 61 62 63        action 64 = pass
// A move must flip at least one line of opponent discs bracketed by one of the mover's. Pass is
// legal only when the side to move has no other move, and is a real ply. The game ends when
// neither side can move; more discs wins (+1/-1/0 only).

import { cellAt, defineGame, outcomeRewards } from './base.js';

const ROWS = 8;
const COLS = 8;
const NUM_SQUARES = 64;
const PASS = 64;
const NUM_ACTIONS = 65;
const COLUMN_NAMES = 'abcdefgh';
const DIRECTIONS = [[0, 1], [0, -1], [1, 0], [-1, 0], [1, 1], [-1, -1], [1, -1], [-1, 1]];

/** The opponent squares a `piece` placed on `square` flips (empty when the move is illegal). */
function flips(board, square, piece) {
  const opponent = 3 - piece;
  const row = Math.floor(square / COLS);
  const col = square % COLS;
  const flipped = [];
  for (const [dRow, dCol] of DIRECTIONS) {
    const run = [];
    let r = row + dRow;
    let c = col + dCol;
    while (r >= 0 && r < ROWS && c >= 0 && c < COLS && board[r * COLS + c] === opponent) {
      run.push(r * COLS + c);
      r += dRow;
      c += dCol;
    }
    const bracketed = run.length > 0 && r >= 0 && r < ROWS && c >= 0 && c < COLS &&
      board[r * COLS + c] === piece;
    if (bracketed) flipped.push(...run);
  }
  return flipped;
}

/** Uint8Array(64): 1 on the empty squares where `piece`'s side flips something. */
function movesOf(board, piece) {
  return Uint8Array.from({ length: NUM_SQUARES }, (_, square) =>
    (board[square] === 0 && flips(board, square, piece).length > 0 ? 1 : 0));
}

/** The full state of `board` with `player` to move: legal moves, the pass, the end. */
function position(board, player) {
  const moves = movesOf(board, player + 1);
  const canMove = moves.includes(1);
  const opponentCanMove = movesOf(board, 2 - player).includes(1);
  const terminated = !canMove && !opponentCanMove;
  const legal = new Uint8Array(NUM_ACTIONS);
  legal.set(moves);
  legal[PASS] = !canMove && opponentCanMove ? 1 : 0;
  let rewards = [0, 0];
  if (terminated) {
    const [black, white] = discCounts(board);
    rewards = outcomeRewards(black > white ? 0 : white > black ? 1 : -1);
  }
  return { board, currentPlayer: player, legal, terminated, rewards };
}

/** [black, white] disc counts. */
export function discCounts(board) {
  let black = 0;
  let white = 0;
  for (const cell of board) {
    if (cell === 1) black++;
    else if (cell === 2) white++;
  }
  return [black, white];
}

function init() {
  const board = new Int8Array(NUM_SQUARES);
  board[27] = 2; // d4 white
  board[36] = 2; // e5 white
  board[28] = 1; // e4 black
  board[35] = 1; // d5 black
  return { ...position(board, 0), lastAction: null };
}

function applyLegalMove(state, action) {
  const mover = state.currentPlayer;
  const board = Int8Array.from(state.board);
  if (action !== PASS) {
    board[action] = mover + 1;
    for (const square of flips(state.board, action, mover + 1)) board[square] = mover + 1;
  }
  return position(board, 1 - mover);
}

function actionToText(action) {
  if (action === PASS) return 'pass';
  if (!(Number.isInteger(action) && action >= 0 && action < PASS)) {
    throw new Error(`${action} is not an Othello action: use 0-63 for a square, 64 to pass`);
  }
  return COLUMN_NAMES[action % COLS] + String(Math.floor(action / COLS) + 1);
}

function actionFromText(text) {
  const name = String(text).trim().toLowerCase();
  if (name === 'pass') return PASS;
  if (!/^[a-h][1-8]$/.test(name)) {
    throw new Error(
      `'${text}' is not an Othello move: use a column a-h and a row 1-8 (e.g. d3), or pass`);
  }
  return (Number(name[1]) - 1) * COLS + COLUMN_NAMES.indexOf(name[0]);
}

export const game = defineGame({
  name: 'othello',
  displayName: 'Othello',
  numActions: NUM_ACTIONS,
  rows: ROWS,
  cols: COLS,
  encodingVersion: 1,
  playerNames: ['Black', 'White'],
  passAction: PASS,
  init,
  applyLegalMove,
  actionToText,
  actionFromText,
  actionOfCell: (row, col) => cellAt(ROWS, COLS, row, col),
});
