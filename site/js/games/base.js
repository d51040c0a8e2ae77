// What every game shares: the step wrapper for illegal moves and finished games, the
// observation planes, line tables and outcome rewards. The mirror of cartridge_jax/games/base.py;
// site/tests/rules.test.mjs replays games that the JAX rules wrote out and compares every state.
//
// A State is a plain object, never mutated (every step builds a new one):
//   board          Int8Array(rows * cols): 0 empty, 1 player 0's piece, 2 player 1's piece;
//                  row 0 is the top row, cell = row * cols + col
//   currentPlayer  0 | 1, the side to move (player 0 starts)
//   legal          Uint8Array(numActions): 1 where the move is legal, all 0 once terminated
//   terminated     boolean
//   rewards        [r0, r1]: +1 win, -1 loss, 0 draw; set only by the step that ends the game
//   lastAction     the action that led here, or null at the start

/**
 * Builds a game object from its metadata and `applyLegalMove(state, action) -> state`, which
 * needs to be right only for legal actions in live games.
 */
export function defineGame({ applyLegalMove, ...spec }) {
  const numCells = spec.rows * spec.cols;
  return Object.freeze({
    ...spec,
    observationShape: Object.freeze([spec.rows, spec.cols, 2]),
    playerNames: Object.freeze([...spec.playerNames]),
    step: makeStep(applyLegalMove),
    observe: (state) => piecePlanes(state.board, state.currentPlayer, numCells),
  });
}

/**
 * The shared rules around a game's own move: stepping a finished game changes nothing but
 * zeroes the rewards (as in JAX, where a batch keeps stepping); an illegal action (not legal
 * now, out of range, or not an integer) ends the game at once, the side that played it loses
 * and the board stays as it was.
 */
export function makeStep(applyLegalMove) {
  return function step(state, action) {
    if (state.terminated) {
      return { ...state, rewards: [0, 0] };
    }
    if (!isLegal(state, action)) {
      return {
        ...state,
        legal: new Uint8Array(state.legal.length),
        terminated: true,
        rewards: state.currentPlayer === 0 ? [-1, 1] : [1, -1],
        lastAction: action,
      };
    }
    return { ...applyLegalMove(state, action), lastAction: action };
  };
}

function isLegal(state, action) {
  return Number.isInteger(action) && action >= 0 && action < state.legal.length &&
    state.legal[action] === 1;
}

/** Float32Array(numCells * 2), [cell][plane]: plane 0 the side to move's pieces, 1 the opponent's. */
export function piecePlanes(board, currentPlayer, numCells) {
  const planes = new Float32Array(numCells * 2);
  const own = currentPlayer + 1;
  for (let cell = 0; cell < numCells; cell++) {
    if (board[cell] === own) planes[2 * cell] = 1;
    else if (board[cell] !== 0) planes[2 * cell + 1] = 1;
  }
  return planes;
}

/** [r0, r1] for `winner` (0, 1, or -1 for a draw) of a finished game. */
export function outcomeRewards(winner) {
  if (winner < 0) return [0, 0];
  return winner === 0 ? [1, -1] : [-1, 1];
}

/**
 * For each cell, the lines of `length` cells in a row (horizontal, vertical, both diagonals)
 * through it: an array per cell of arrays of cell indices.
 */
export function linesThroughEachCell(rows, cols, length) {
  const through = Array.from({ length: rows * cols }, () => []);
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      for (const [dRow, dCol] of [[0, 1], [1, 0], [1, 1], [1, -1]]) {
        const endRow = row + (length - 1) * dRow;
        const endCol = col + (length - 1) * dCol;
        if (endRow >= rows || endCol < 0 || endCol >= cols) continue;
        const line = Array.from({ length }, (_, k) => (row + k * dRow) * cols + col + k * dCol);
        for (const cell of line) through[cell].push(line);
      }
    }
  }
  return through;
}

/** Whether `piece` has a full line on `board` through `cell`. */
export function completesLine(board, cell, piece, linesThrough) {
  return linesThrough[cell].some((line) => line.every((c) => board[c] === piece));
}

/** The cell a click at (row, col) means, or null off the board. */
export function cellAt(rows, cols, row, col) {
  const inside = Number.isInteger(row) && Number.isInteger(col) &&
    row >= 0 && row < rows && col >= 0 && col < cols;
  return inside ? row * cols + col : null;
}

// The start of a game that begins on an empty board with every action legal.
export function emptyBoardState(numCells, numActions) {
  return {
    board: new Int8Array(numCells),
    currentPlayer: 0,
    legal: new Uint8Array(numActions).fill(1),
    terminated: false,
    rewards: [0, 0],
    lastAction: null,
  };
}
