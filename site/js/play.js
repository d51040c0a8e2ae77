// The play page: a person against the exported network, which searches in a Worker
// (js/worker.js). Without a usable model the bot plays random legal moves, clearly labelled,
// and the error says why.
//
// Test hooks (a stable contract, see the browser tests):
//   [data-action="<a>"]     one clickable element per action (Connect 4: one per column; the
//                           Othello pass button is data-action="64"); data-legal="1" marks the
//                           moves the person may play now
//   body[data-ready="1"]    the person's turn (also against the random bot)
//   body[data-bot-thinking="1"] while the bot chooses;  body[data-result] human | bot | draw
//   body[data-game] the game shown;  body[data-bot] network | random | loading
//   [data-testid=status | error | new-game | bot-first | game | model-info | model-note]

import { getGame } from './games/index.js';
import { fetchManifest } from './model.js';

const SITE_URL = new URL('./', document.baseURI);
const POLL_MS = 4000; // how often the manifest is checked for a new export
const RANDOM_MOVE_DELAY_MS = 300; // so a random bot's reply is seen to happen
const STRENGTHS = [0, 16, 32, 64, 128, 200, 400, 800, 1600]; // simulations offered
// For manifests written before they carried `agent`: the default configuration's values.
const FALLBACK_AGENT = Object.freeze({ simulations: 64 });
const MIN_SHOWN_SHARE = 0.005; // move probabilities below half a percent are not drawn
const TOP_MOVES = 5;
// Games decided by counting pieces, whose running score is worth showing.
const SCORED_BY_PIECES = new Set(['othello']);

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), board: $('board'), pass: $('pass'), score: $('score'), error: $('error'),
  game: $('game'), strength: $('strength'), botFirst: $('bot-first'),
  showProbabilities: $('show-probabilities'), newGame: $('new-game'), undo: $('undo'),
  winProbability: $('win-probability'), winBar: $('win-bar'), searchInfo: $('search-info'),
  topMoves: $('top-moves'), modelInfo: $('model-info'), modelNote: $('model-note'), moves: $('moves'),
};

// ---------------------------------------------------------------------------------------------
// The worker: requests by id, answered in order.

const pending = new Map(); // request id -> {resolve, reject}
let nextRequestId = 0;
let workerProblem = null; // a sentence once the worker cannot answer
const worker = startWorker();

function startWorker() {
  let started;
  try {
    started = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  } catch (error) { // a browser without module workers
    workerProblem = `This browser cannot run the bot's worker (${error.message}).`;
    return null;
  }
  started.addEventListener('message', ({ data }) => {
    const request = pending.get(data.id);
    pending.delete(data.id);
    if (data.type === 'failed') {
      request.reject(Object.assign(new Error(data.message), { modelBroken: data.modelBroken }));
    } else {
      request.resolve(data);
    }
  });
  started.addEventListener('error', (event) => {
    event.preventDefault();
    workerProblem = 'The bot\'s worker (js/worker.js) stopped' +
      (event.message ? `: ${event.message}` : ': it or a module it imports failed to load.');
    for (const request of pending.values()) request.reject(brokenModel(workerProblem));
    pending.clear();
  });
  return started;
}

function ask(request) {
  if (workerProblem) return Promise.reject(brokenModel(workerProblem));
  const id = ++nextRequestId;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...request, id });
  });
}

function brokenModel(message) {
  return Object.assign(new Error(message), { modelBroken: true });
}

// ---------------------------------------------------------------------------------------------
// What the page shows: one game in progress and the model playing it.

const view = {
  game: null,
  states: [], // every position since the start; the last is the current one
  botPlayer: 1,
  botToken: 0, // bumped to drop a bot move that no longer applies (undo, new game)
  botThinking: false,
  // The bot's searches by ply (sparse): searches[p] chose the move from states[p], as
  // {ply, policy, rootValue, seconds, simulations}; none for random moves.
  searches: [],
  cursor: 0, // the keyboard cursor's cell
  keyboard: false, // whether to draw the cursor
  drawnBoard: null, // Int8Array: the board as drawn, to animate exactly what changed
};

const model = {
  status: 'loading', // 'loading' (first load for this game), 'ready', 'random'
  manifest: null, // the loaded model's
  triedSha: null, // the last model tried, so a broken one is not fetched every poll
  token: 0, // bumped when the game changes: drops answers about the previous game's model
  refreshing: false,
  note: '',
};

const strengthChosen = new Map(); // game name -> simulations the person picked

const current = () => view.states.at(-1);
const humanPlayer = () => 1 - view.botPlayer;
const agentOf = (manifest) => manifest?.agent ?? FALLBACK_AGENT;

function humanCanMove() {
  const state = current();
  return model.status !== 'loading' && !view.botThinking && !state.terminated &&
    state.currentPlayer === humanPlayer();
}

function result() {
  const state = current();
  if (!state.terminated) return null;
  const reward = state.rewards[humanPlayer()];
  return reward > 0 ? 'human' : reward < 0 ? 'bot' : 'draw';
}

// ---------------------------------------------------------------------------------------------
// Playing

function newGame() {
  view.botToken++;
  view.botThinking = false;
  view.states = [view.game.init()];
  view.botPlayer = ui.botFirst.checked ? 0 : 1;
  view.searches = [];
  advance();
}

/** Lets the bot move if it is its turn, then draws. */
function advance() {
  const state = current();
  if (!state.terminated && state.currentPlayer === view.botPlayer && !view.botThinking &&
      model.status !== 'loading') {
    botMove();
  }
  render();
}

function humanPlay(action) {
  if (!humanCanMove() || current().legal[action] !== 1) return; // occupied, illegal, not now
  view.states.push(view.game.step(current(), action));
  advance();
}

async function botMove() {
  const token = ++view.botToken;
  const state = current();
  view.botThinking = true;
  let action = null;
  if (model.status === 'ready') {
    const simulations = Number(ui.strength.value);
    try {
      const reply = await ask({ type: 'search', game: view.game.name, state, simulations });
      if (token !== view.botToken) return;
      action = reply.action;
      view.searches[view.states.length - 1] = {
        ply: view.states.length - 1, policy: reply.policy,
        rootValue: reply.rootValue, seconds: reply.seconds, simulations,
      };
    } catch (error) {
      if (token !== view.botToken) return;
      if (error.modelBroken) fallBackToRandom(error.message);
      else showError(error.message);
    }
  }
  if (action === null) {
    await sleep(RANDOM_MOVE_DELAY_MS);
    if (token !== view.botToken) return;
    action = randomLegalAction(state);
  }
  view.botThinking = false;
  view.states.push(view.game.step(state, action));
  advance();
}

function randomLegalAction(state) {
  const legal = [...state.legal.keys()].filter((action) => state.legal[action] === 1);
  return legal[Math.floor(Math.random() * legal.length)];
}

/** Takes back the person's last move (and the bot's reply to it). */
function undo() {
  if (!canUndo()) return;
  view.botToken++;
  view.botThinking = false;
  do view.states.pop();
  while (view.states.length > 1 && current().currentPlayer === view.botPlayer);
  view.searches.length = Math.min(view.searches.length, view.states.length - 1);
  advance();
}

function canUndo() {
  return view.states.slice(0, -1).some((state) => state.currentPlayer === humanPlayer());
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// The model: loaded when the game changes, replaced when its manifest announces a new export.

function loadModel() {
  model.token++;
  Object.assign(model, { status: 'loading', manifest: null, triedSha: null, note: '' });
  showError('');
  refreshModel();
}

function refreshModel() {
  const token = model.token;
  model.refreshing = true;
  updateModel(token).finally(() => {
    if (token === model.token) model.refreshing = false;
  });
}

async function updateModel(token) {
  const game = view.game;
  let manifest;
  try {
    manifest = await fetchManifest(SITE_URL, game);
  } catch (error) {
    // A first load falls back to random moves; later, a model that plays stays (a run may be
    // rewriting its files), and a fallback waits for a manifest that works.
    if (token === model.token && model.status === 'loading') fallBackToRandom(error.message);
    return;
  }
  if (token !== model.token || manifest.sha256 === model.triedSha) return;
  model.triedSha = manifest.sha256;
  try {
    await ask({ type: 'load', game: game.name, manifest });
  } catch (error) {
    if (token !== model.token) return;
    if (model.status === 'ready') {
      showError(`The new ${game.displayName} model (step ${manifest.step}) could not be loaded, ` +
        `so the bot keeps playing with step ${model.manifest.step}: ${error.message}`);
    } else {
      fallBackToRandom(error.message);
    }
    return;
  }
  if (token !== model.token) return;
  if (model.status !== 'loading') model.note = `New model loaded: step ${manifest.step}`;
  Object.assign(model, { status: 'ready', manifest });
  showError('');
  fillStrengths();
  advance(); // the bot may have been waiting for its first model
}

function fallBackToRandom(message) {
  Object.assign(model, { status: 'random', manifest: null });
  showError(`${message} Until then the bot plays random moves.`);
  fillStrengths();
  advance();
}

function pollModel() {
  if (!model.refreshing && !document.hidden) refreshModel();
  renderModel(); // the model's age moves on
}

function fillStrengths() {
  const { simulations } = agentOf(model.manifest);
  const values = [...new Set([...STRENGTHS, simulations])].sort((a, b) => a - b);
  ui.strength.replaceChildren(...values.map((value) => {
    const label = value === 0 ? 'No search (raw network)' : `${value} simulations`;
    return new Option(value === simulations ? `${label} (trained default)` : label, value);
  }));
  ui.strength.value = String(strengthChosen.get(view.game.name) ?? simulations);
  ui.strength.disabled = model.status !== 'ready';
}

// ---------------------------------------------------------------------------------------------
// Drawing

let cells = []; // element holding each cell's piece
let actionElements = new Map(); // action -> its clickable element

/** Builds the board's elements for `game`: a button per cell, or per column for Connect 4. */
function buildBoard(game) {
  const byColumn = playsByColumn(game);
  ui.board.replaceChildren();
  ui.board.className = `board board-${game.name}${byColumn ? ' by-column' : ''}`;
  ui.board.style.setProperty('--rows', game.rows);
  ui.board.style.setProperty('--cols', game.cols);
  cells = [];
  actionElements = new Map();
  const cellElement = (row, col, tag) => {
    const element = document.createElement(tag);
    element.className = 'cell';
    element.dataset.cell = row * game.cols + col;
    cells[row * game.cols + col] = element;
    return element;
  };
  if (byColumn) {
    for (let col = 0; col < game.cols; col++) {
      const column = document.createElement('button');
      column.type = 'button';
      column.className = 'column';
      column.tabIndex = -1;
      for (let row = 0; row < game.rows; row++) column.append(cellElement(row, col, 'span'));
      addAction(column, game.actionOfCell(0, col));
      column.setAttribute('aria-label', `Column ${game.actionToText(game.actionOfCell(0, col))}`);
      ui.board.append(column);
    }
  } else {
    for (let row = 0; row < game.rows; row++) {
      for (let col = 0; col < game.cols; col++) {
        const cell = cellElement(row, col, 'button');
        cell.type = 'button';
        cell.tabIndex = -1;
        addAction(cell, game.actionOfCell(row, col));
        ui.board.append(cell);
      }
    }
  }
  ui.pass.hidden = game.passAction === null;
  if (game.passAction !== null) addAction(ui.pass, game.passAction);
  else delete ui.pass.dataset.action;
  view.drawnBoard = null;
  view.cursor = Math.floor(game.rows / 2) * game.cols + Math.floor((game.cols - 1) / 2);
}

/** Whether a move is a column rather than a cell (Connect 4: a click anywhere in a column). */
function playsByColumn(game) {
  return game.actionOfCell(0, 0) === game.actionOfCell(game.rows - 1, 0);
}

function addAction(element, action) {
  element.dataset.action = action;
  actionElements.set(action, element);
}

function render() {
  renderBoard();
  renderStatus();
  renderMoves();
  renderEvaluation();
  renderModel();
  ui.undo.disabled = !canUndo();
  const body = document.body.dataset;
  setData(body, 'ready', humanCanMove() ? '1' : null);
  setData(body, 'botThinking', view.botThinking ? '1' : null);
  setData(body, 'result', result());
  body.game = view.game.name;
  body.bot = model.status === 'ready' ? 'network' : model.status; // network | random | loading
}

function setData(dataset, key, value) {
  if (value === null) delete dataset[key];
  else dataset[key] = value;
}

function renderBoard() {
  const game = view.game;
  const state = current();
  const previous = view.states.at(-2);
  const drawn = view.drawnBoard;
  const humanTurn = humanCanMove();
  const shares = shownShares();
  for (let cell = 0; cell < cells.length; cell++) {
    const piece = state.board[cell];
    const element = cells[cell];
    if (drawn === null || drawn[cell] !== piece) {
      const change = drawn === null || piece === 0 ? ''
        : drawn[cell] === 0 ? 'placed' : 'flipped';
      element.replaceChildren(...(piece === 0 ? [] : [pieceElement(piece, change, cell)]));
    }
    const isLast = previous !== undefined && previous.board[cell] === 0 && piece !== 0;
    element.classList.toggle('last', isLast);
    const name = piece === 0 ? 'empty' : game.playerNames[piece - 1];
    element.setAttribute('aria-label', `${cellName(cell)}: ${name}`);
  }
  view.drawnBoard = Int8Array.from(state.board);
  const cursorAction = game.actionOfCell(Math.floor(view.cursor / game.cols),
    view.cursor % game.cols);
  for (const [action, element] of actionElements) {
    const legal = humanTurn && state.legal[action] === 1;
    element.classList.toggle('cursor', view.keyboard && action === cursorAction);
    setData(element.dataset, 'legal', legal ? '1' : null);
    element.classList.toggle('legal', legal);
    element.setAttribute('aria-disabled', String(!legal));
    element.querySelector(':scope > .share')?.remove();
    if (shares !== null && shares[action] >= MIN_SHOWN_SHARE) {
      const label = document.createElement('span');
      label.className = 'share';
      label.textContent = percent(shares[action]);
      element.append(label);
    }
  }
  if (game.passAction !== null) ui.pass.disabled = !(humanTurn && state.legal[game.passAction]);
  ui.score.textContent = SCORED_BY_PIECES.has(game.name)
    ? game.playerNames.map((name, player) => `${name} ${count(state.board, player + 1)}`).join(' · ')
    : '';
}

function pieceElement(piece, change, cell) {
  const element = document.createElement('span');
  element.className = `piece p${piece - 1} ${change}`;
  // Connect 4's drop starts this many cells above the one it lands in.
  element.style.setProperty('--drop', Math.floor(cell / view.game.cols) + 1);
  return element;
}

function cellName(cell) {
  const game = view.game;
  const action = game.actionOfCell(Math.floor(cell / game.cols), cell % game.cols);
  const name = game.actionToText(action);
  return playsByColumn(game) ? `column ${name}, row ${Math.floor(cell / game.cols) + 1}` : name;
}

function count(board, piece) {
  return board.reduce((total, value) => total + (value === piece ? 1 : 0), 0);
}

/** The bot's latest search in this game, or null. */
function lastSearch() {
  return view.searches.findLast((search) => search !== undefined) ?? null;
}

/** The shares of the bot's last search, while its move is the last one played; else null. */
function shownShares() {
  const search = lastSearch();
  if (!ui.showProbabilities.checked || search === null || search.ply !== view.states.length - 2) {
    return null;
  }
  return search.policy;
}

function renderStatus() {
  const game = view.game;
  const state = current();
  const you = game.playerNames[humanPlayer()];
  const bot = game.playerNames[view.botPlayer];
  const outcome = result();
  let text;
  if (outcome !== null) {
    text = { human: `You win with ${you}!`, bot: `The bot wins with ${bot}.`, draw: 'Draw.' }[outcome];
  } else if (model.status === 'loading') {
    text = `Loading the ${game.displayName} model…`;
  } else if (view.botThinking) {
    text = model.status === 'ready' ? `The bot (${bot}) is thinking…`
      : `The random bot (${bot}) is choosing…`;
  } else {
    const previous = view.states.at(-2);
    const botPassed = game.passAction !== null && previous !== undefined &&
      state.lastAction === game.passAction && previous.currentPlayer === view.botPlayer;
    const mustPass = game.passAction !== null && state.legal[game.passAction] === 1;
    text = (botPassed ? `The bot (${bot}) had no move and passed. ` : '') +
      (mustPass ? `You (${you}) have no move: pass.` : `Your move: you play ${you}.`);
  }
  ui.status.textContent = text;
}

function renderMoves() {
  const game = view.game;
  ui.moves.replaceChildren(...view.states.slice(1).map((state, index) => {
    const mover = view.states[index].currentPlayer;
    const item = document.createElement('li');
    item.className = mover === view.botPlayer ? 'by-bot' : 'by-human';
    const who = mover === view.botPlayer ? 'bot' : 'you';
    item.textContent = `${game.playerNames[mover]} (${who}) ${game.actionToText(state.lastAction)}`;
    return item;
  }));
  ui.moves.scrollTop = ui.moves.scrollHeight; // the latest move in view
}

function renderEvaluation() {
  const search = lastSearch();
  if (search === null) {
    ui.winProbability.textContent = '–';
    ui.winBar.style.setProperty('--share', 0.5);
    ui.searchInfo.textContent = model.status === 'random'
      ? 'The random bot has no opinion.' : 'Shown after the bot\'s first move.';
    ui.topMoves.hidden = true;
    return;
  }
  // The search's value of the position the bot moved from, its own view, in [-1, 1].
  const chance = (search.rootValue + 1) / 2;
  ui.winProbability.textContent = percent(chance);
  ui.winBar.style.setProperty('--share', chance);
  const effort = search.simulations === 0 ? 'the raw network'
    : `${search.simulations} simulations`;
  ui.searchInfo.textContent = `Last move: ${effort} in ${search.seconds.toFixed(2)} s.`;
  ui.topMoves.hidden = !ui.showProbabilities.checked;
  const shares = search.policy;
  const best = [...shares.keys()].filter((a) => shares[a] >= MIN_SHOWN_SHARE)
    .sort((a, b) => shares[b] - shares[a]).slice(0, TOP_MOVES);
  ui.topMoves.replaceChildren(...best.map((action) => {
    const item = document.createElement('li');
    item.textContent = `${view.game.actionToText(action)}: ${percent(shares[action])}`;
    return item;
  }));
}

function renderModel() {
  const manifest = model.manifest;
  if (model.status === 'loading') {
    ui.modelInfo.textContent = 'Loading…';
  } else if (model.status === 'random') {
    ui.modelInfo.textContent = 'No network loaded: the bot plays random legal moves.';
  } else {
    ui.modelInfo.textContent = `${view.game.displayName} network at training step ` +
      `${manifest.step} (iteration ${manifest.iteration}), exported ${age(manifest.created)}.`;
  }
  ui.modelInfo.classList.toggle('fallback', model.status === 'random');
  ui.modelNote.textContent = model.note;
  ui.modelNote.hidden = model.note === '';
}

function age(created) {
  const seconds = (Date.now() - Date.parse(created)) / 1000;
  if (!Number.isFinite(seconds)) return 'at an unknown time';
  const units = [['day', 86400], ['hour', 3600], ['minute', 60]];
  for (const [unit, size] of units) {
    const amount = Math.floor(seconds / size);
    if (amount >= 1) return `${amount} ${unit}${amount === 1 ? '' : 's'} ago`;
  }
  return 'just now';
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = message === '';
}

const percent = (share) => `${Math.round(share * 100)}%`;

// ---------------------------------------------------------------------------------------------
// Input: clicks, keys, controls

ui.board.addEventListener('click', (event) => {
  const target = event.target.closest('[data-action]');
  if (target === null) return;
  view.keyboard = false;
  humanPlay(Number(target.dataset.action));
});
ui.pass.addEventListener('click', () => humanPlay(view.game.passAction));

document.addEventListener('keydown', (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.target.closest('select, input')) {
    return;
  }
  const onBoard = event.target === document.body || ui.board.contains(event.target);
  const handled = onBoard ? boardKey(event.key) : false;
  if (!handled) {
    const shortcut = { n: newGame, u: undo, p: () => humanPlay(view.game.passAction ?? -1) };
    if (!(event.key.toLowerCase() in shortcut)) return;
    shortcut[event.key.toLowerCase()]();
  }
  event.preventDefault();
});

/** Arrow keys, Enter/Space and digits on the board; whether the key was one of them. */
function boardKey(key) {
  const game = view.game;
  const byColumn = playsByColumn(game);
  const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
  let row = Math.floor(view.cursor / game.cols);
  let col = view.cursor % game.cols;
  if (key in moves) {
    if (!byColumn) row = clamp(row + moves[key][0], game.rows);
    col = clamp(col + moves[key][1], game.cols);
    view.cursor = row * game.cols + col;
    view.keyboard = true;
    render();
    return true;
  }
  if (key === 'Enter' || key === ' ') {
    view.keyboard = true;
    humanPlay(game.actionOfCell(row, col));
    render();
    return true;
  }
  const digit = /^[1-9]$/.test(key) ? Number(key) - 1 : null;
  if (digit !== null && byColumn && digit < game.cols) { // Connect 4: the column
    humanPlay(game.actionOfCell(0, digit));
    return true;
  }
  if (digit !== null && !byColumn && digit < game.rows * game.cols) { // TicTacToe: the cell
    humanPlay(game.actionOfCell(Math.floor(digit / game.cols), digit % game.cols));
    return true;
  }
  return false;
}

const clamp = (value, size) => Math.min(size - 1, Math.max(0, value));

ui.game.addEventListener('change', () => switchGame(ui.game.value));
ui.botFirst.addEventListener('change', newGame);
ui.newGame.addEventListener('click', newGame);
ui.undo.addEventListener('click', undo);
ui.showProbabilities.addEventListener('change', render);
ui.strength.addEventListener('change', () => {
  strengthChosen.set(view.game.name, Number(ui.strength.value));
});

function switchGame(name) {
  view.game = getGame(name);
  ui.game.value = name;
  // The address names the game (as the stats page's does), and the stats links follow it.
  history.replaceState(null, '', `?game=${name}`);
  for (const link of document.querySelectorAll('a[href^="stats.html"]')) {
    link.href = `stats.html?game=${name}`;
  }
  buildBoard(view.game);
  loadModel();
  fillStrengths();
  newGame();
}

// The game named in the address (?game=connect4), else the first in the list.
const named = new URLSearchParams(location.search).get('game');
switchGame([...ui.game.options].some((option) => option.value === named) ? named : ui.game.value);
setInterval(pollModel, POLL_MS);
