// The training stats page (stats.html): the chosen game's stats.json as cards and charts,
// refreshed every few seconds while a run trains, with the site's model and its card.
//
// It reads, relative to the site root (see docs/stats.md for stats.json):
//   models/<game>/stats.json      the training run's telemetry (required)
//   models/<game>/manifest.json   the model the play page uses (optional)
//   models/<game>/card.json       that model's card (optional, shown as it comes)
// Every fetch is cache 'no-store': a browser serves an unchanged URL from its cache otherwise.

import { GAMES } from './games/index.js';
import * as statsData from './stats_data.js';
import { drawChart, drawNote, removeCharts } from './stats_chart.js';

const POLL_MS = 5000;
const AGE_TICK_MS = 1000;

// Line colours, chosen to read on light and dark backgrounds.
const COLOR = {
  total: '#4f6bed', policy: '#e08a1e', value: '#1aa179',
  win: '#22a355', draw: '#8a94a6', loss: '#e0473e', best: '#9b5de5',
  learningRate: '#4f6bed', positions: '#4f6bed', games: '#e08a1e',
};
const PALETTE = ['#4f6bed', '#e08a1e', '#1aa179', '#e0473e', '#9b5de5', '#0fa3b1', '#c2527a', '#7a8b2e'];

const format = {
  loss: (value) => statsData.formatNumber(value, 3),
  rate: (value) => `${Math.round(100 * value)}%`,
  number: (value) => statsData.formatNumber(value, 3),
  perSecond: (value) => `${statsData.formatCompact(value)}/s`,
};

// The benchmark chart's x axes by statsData.benchmarkAxes name, but for steps: every chart's default.
const BENCHMARK_X = {
  clock: { label: 'training clock (min)', format: (minutes) => statsData.formatNumber(minutes, 3) },
  positions: { label: 'positions generated', format: statsData.formatCompact, whole: true },
};

// The files read per game: name -> file in models/<game>/. The card belongs to the exported
// model, so it is read again only when the manifest changes.
const FILES = { stats: 'stats.json', manifest: 'manifest.json', card: 'card.json' };

const page = {
  game: null,         // the game shown, a key of GAMES
  generation: 0,      // bumped when the game changes: answers for an older game are dropped
  files: {},          // name -> {text, value, problem} of the copy last read (text null: absent)
  fetchProblems: {},  // name -> why the latest fetch failed, or null
  timer: null,
};

const $ = (selector) => document.querySelector(selector);

function start() {
  const select = $('#game');
  for (const [name, game] of Object.entries(GAMES)) select.append(new Option(game.displayName, name));
  select.addEventListener('change', () => showGame(select.value));
  $('#controls').addEventListener('change', () => {
    removeCharts(document.body);
    drawStats();
  });
  $('#controls').addEventListener('submit', (event) => event.preventDefault());
  $('#benchmark-x').addEventListener('change', drawStats);
  setInterval(tickAges, AGE_TICK_MS);

  const wanted = new URLSearchParams(location.search).get('game') ?? 'tictactoe';
  if (Object.hasOwn(GAMES, wanted)) {
    showGame(wanted);
  } else {
    select.value = '';
    showError(`unknown game "${wanted}" in the address: choose ${Object.keys(GAMES).join(', ')}`);
  }
}

function showGame(game) {
  $('#game').value = game;
  const url = new URL(location.href);
  url.searchParams.set('game', game);
  history.replaceState(null, '', url);
  document.title = `Cartridge: ${GAMES[game].displayName} training stats`;

  Object.assign(page, { game, generation: page.generation + 1, files: {}, fetchProblems: {} });
  clearTimeout(page.timer);
  removeCharts(document.body);
  for (const selector of ['#model-facts', '#model-card', '[data-testid="summary"]', '#eval-cards', '#eval-charts']) {
    $(selector).replaceChildren();
  }
  for (const container of document.querySelectorAll('[data-chart]')) delete container.dataset.points;
  showError(null);
  refresh();
}

/** Loads the game's files, redraws what changed, and comes back in POLL_MS. */
async function refresh() {
  const { game, generation } = page;
  const changed = new Set();
  const read = async (names) => {
    const urls = names.map((name) => `models/${game}/${FILES[name]}`);
    const answers = await Promise.all(urls.map(load));
    names.forEach((name, i) => {
      const { text, error } = answers[i];
      page.fetchProblems[name] = error ?? null; // on an error the last good copy stays shown
      if (error || page.files[name]?.text === text) return;
      page.files[name] = readFile(name, text, urls[i]);
      changed.add(name);
    });
  };
  await read(['stats', 'manifest']);
  if (generation === page.generation && changed.has('manifest')) await read(['card']);
  if (generation !== page.generation) return; // the game changed meanwhile: drop the answers
  page.timer = setTimeout(refresh, POLL_MS);

  showError(Object.keys(FILES).map((name) => page.fetchProblems[name] ?? page.files[name]?.problem)
    .filter(Boolean).join('\n') || null);
  if (changed.has('stats') || changed.has('manifest')) drawModel();
  if (changed.has('card')) drawCard();
  if (changed.has('stats') && page.files.stats.value) {
    drawStats();
    document.body.dataset.statsReady = '1';
  }
}

/** {text, value, problem} of a fetched file: value null when it is absent or unusable. */
function readFile(name, text, url) {
  if (text === null) {
    return { text, value: null, problem: name === 'stats' ? missingMessage(page.game) : null };
  }
  try {
    return { text, value: name === 'stats' ? statsData.parseStats(text, url) : JSON.parse(text), problem: null };
  } catch (error) {
    const problem = error instanceof statsData.StatsPageError ? error.message : `${url} is not valid JSON (${error.message})`;
    return { text, value: null, problem };
  }
}

/** {text} of `url`, text null when the file is not there, or {error} when it cannot be read. */
async function load(url) {
  let response;
  try {
    response = await fetch(url, { cache: 'no-store' });
  } catch (error) {
    return { text: null, error: `cannot reach the site for ${url} (${error.message}): retrying` };
  }
  if (response.status === 404) return { text: null };
  if (!response.ok) return { text: null, error: `cannot load ${url}: HTTP ${response.status}` };
  try {
    return { text: await response.text() };
  } catch (error) {
    return { text: null, error: `reading ${url} broke off (${error.message}): retrying` };
  }
}

function missingMessage(game) {
  return `no training stats yet for ${game}: run \`python scripts/train.py --game ${game}\` ` +
    'and `python -m cartridge_jax serve RUN_DIR`';
}

/** Shows `message` (lines; `code` in backticks) in the error box, or hides the box for null. */
function showError(message) {
  const box = $('[data-testid="stats-error"]');
  box.hidden = message === null;
  box.replaceChildren();
  for (const line of (message ?? '').split('\n')) {
    const paragraph = document.createElement('p');
    line.split('`').forEach((part, i) => {
      if (i % 2 === 0) {
        paragraph.append(part);
      } else {
        const code = document.createElement('code');
        code.textContent = part;
        paragraph.append(code);
      }
    });
    box.append(paragraph);
  }
}

// ---- the model panel -------------------------------------------------------------------------

/** The exported model's facts, and how far training has gone past it. */
function drawModel() {
  const [stats, manifest] = ['stats', 'manifest'].map((name) => page.files[name]?.value);
  const facts = $('#model-facts');
  if (!manifest) {
    facts.replaceChildren(element('p', `no exported model for ${page.game} here yet`, 'stats-muted'));
    return;
  }
  facts.replaceChildren(definitions([
    ['step', statsData.formatCount(manifest.step)],
    ['iteration', statsData.formatCount(manifest.iteration)],
    ['exported', age(manifest.created)],
    ['network', manifest.network ?? '–'],
  ]));
  if (stats && Number.isInteger(manifest.step) && stats.step > manifest.step) {
    facts.append(element('p', `training has gone on to step ${statsData.formatCount(stats.step)}; ` +
      'export it to play the newer network', 'stats-muted'));
  }
}

/** The model card, folded; drawn only when card.json changes, so an open card stays open. */
function drawCard() {
  const card = page.files.card?.value;
  const holder = $('#model-card');
  holder.replaceChildren();
  if (!isPlainObject(card)) return;
  const details = element('details');
  details.append(element('summary', 'Model card'), cardView(card, 0));
  holder.append(details);
}

/** A model card of any shape: objects as definition lists (big ones folded), lists of
 * objects as tables. */
function cardView(value, depth) {
  if (Array.isArray(value) && value.length && value.every(isPlainObject)) return table(value);
  if (isPlainObject(value) && depth < 4) {
    const list = definitions(Object.entries(value).map(([key, item]) =>
      [humanKey(key), isScalar(item) ? cardScalar(key, item) : cardView(item, depth + 1)]));
    const leaves = countLeaves(value);
    if (depth === 0 || leaves <= FOLD_LEAVES) return list;
    const folded = element('details');
    folded.append(element('summary', `${leaves} values`), list);
    return folded;
  }
  if (Array.isArray(value) && value.every(isScalar)) return value.map(String).join(', ');
  return JSON.stringify(value);
}

const FOLD_LEAVES = 12; // a card's nested object with more values than this starts folded

function countLeaves(value) {
  return isScalar(value) ? 1 : Object.values(value).reduce((sum, item) => sum + countLeaves(item), 0);
}

/** "wall_time_s" -> "wall time" (its value is shown as a duration), "win_rate" -> "win rate". */
function humanKey(key) {
  return key.replace(/_s$/, '').replaceAll('_', ' ');
}

function cardScalar(key, value) {
  if (typeof value !== 'number') return value === null ? '–' : String(value);
  if (key.endsWith('_s')) return statsData.formatDuration(value);
  if (statsData.isFraction(key)) return statsData.formatPercent(value);
  return Number.isInteger(value) ? statsData.formatCount(value) : statsData.formatNumber(value);
}

function table(rows) {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const view = element('table', null, 'stats-table');
  const head = view.createTHead().insertRow();
  for (const column of columns) head.append(element('th', humanKey(column)));
  const body = view.createTBody();
  for (const row of rows) {
    const line = body.insertRow();
    for (const column of columns) {
      const item = row[column];
      line.insertCell().textContent = item === undefined ? '' : isScalar(item) ? cardScalar(column, item) : JSON.stringify(item);
    }
  }
  return view;
}

// ---- cards and charts from stats.json --------------------------------------------------------

function drawStats() {
  const stats = page.files.stats?.value;
  if (!stats) return;
  drawSummary(stats);
  drawEvalCards(stats);

  const controls = $('#controls').elements;
  const range = controls.range.value === 'all' ? null : Number(controls.range.value);
  const smoothing = Number(controls.smoothing.value);
  const recent = (points) => statsData.lastStepsOnly(points, stats.step, range);
  const history = recent(stats.history);

  drawLoss(history, smoothing);
  drawLearningRate(history);
  drawThroughput(history);
  drawBenchmarks(recent(stats.benchmarks));
  drawEvalCharts(recent(stats.eval_history));
}

function drawSummary(stats) {
  const { losses, throughput } = stats;
  const best = stats.best_model;
  const cards = [
    ['Iteration', statsData.formatCount(stats.iteration)],
    ['Step', statsData.formatCount(stats.step)],
    ['Positions generated', statsData.formatCount(stats.positions_generated)],
    ['Games played', statsData.formatCount(stats.games_played)],
    ['Replay buffer', statsData.formatCount(stats.replay_size), `of ${statsData.formatCount(stats.replay_capacity)} positions`],
    ['Wall time', statsData.formatDuration(stats.wall_time_s)],
    ['Total loss', format.loss(losses.total), `policy ${format.loss(losses.policy)} · value ${format.loss(losses.value)}`],
    ['Learning rate', format.number(stats.learning_rate)],
    ['Self-play', `${statsData.formatCompact(throughput.positions_per_s)} pos/s`,
      `${statsData.formatCompact(throughput.games_per_s)} games/s`],
    ['Best model', best ? `iteration ${statsData.formatCount(best.iteration)}` : 'none yet',
      best ? `step ${statsData.formatCount(best.step)}` : 'no promotion so far'],
    ['Last update', age(stats.updated), `run ${stats.run_id ?? '–'}`],
  ];
  $('[data-testid="summary"]').replaceChildren(...cards.map(([label, value, note]) => card(label, value, note)));
}

function drawEvalCards(stats) {
  const latest = Object.values(stats.last_eval);
  latest.sort((a, b) => (b.opponent === 'best') - (a.opponent === 'best'));
  const cards = latest.map((entry) => {
    const view = card(`vs ${entry.opponent}`, statsData.formatPercent(entry.win_rate),
      `W ${entry.wins} · D ${entry.draws} · L ${entry.losses} at step ${statsData.formatCount(entry.step)}`);
    view.dataset.grade = statsData.winRateGrade(entry.win_rate);
    view.dataset.opponent = entry.opponent;
    if (entry.became_new_best) view.append(element('span', 'New best', 'stats-badge'));
    return view;
  });
  $('#eval-cards').replaceChildren(...(cards.length ? cards : [element('p', 'no evaluation matches yet', 'stats-muted')]));
}

function drawLoss(history, smoothing) {
  const container = $('[data-chart="loss"]');
  if (!history.length) return drawNote(container, 'no training iterations yet');
  const { series, data } = statsData.lossSeries(history, smoothing);
  const colors = [COLOR.total, COLOR.policy, COLOR.value];
  drawChart(container, {
    series: series.map((item, i) => ({ label: item.label, color: colors[i % 3], faint: item.raw })),
    axes: [{ scale: 'y', label: 'loss', format: format.loss }],
  }, data);
}

function drawLearningRate(history) {
  const container = $('[data-chart="learning-rate"]');
  if (!history.length) return drawNote(container, 'no training iterations yet');
  drawChart(container, {
    series: [{ label: 'learning rate', color: COLOR.learningRate }],
    axes: [{ scale: 'y', label: 'learning rate', format: format.number }],
  }, statsData.fieldSeries(history, 'learning_rate'));
}

function drawThroughput(history) {
  const container = $('[data-chart="throughput"]');
  if (!history.length) return drawNote(container, 'no training iterations yet');
  const [steps, positions] = statsData.fieldSeries(history, 'positions_per_s');
  const [, games] = statsData.fieldSeries(history, 'games_per_s');
  drawChart(container, {
    series: [
      { label: 'positions/s', color: COLOR.positions, scale: 'positions' },
      { label: 'games/s', color: COLOR.games, scale: 'games' },
    ],
    axes: [
      { scale: 'positions', label: 'positions/s', format: format.perSecond },
      { scale: 'games', label: 'games/s', format: format.perSecond, side: 1 },
    ],
  }, [steps, positions, games]);
}

/** Strength against the x axis chosen, when every point has it (older files lack the clock
 * and positions: steps then); rates and scores on a percent axis, other measures beside it. */
function drawBenchmarks(points) {
  const container = $('[data-chart="benchmarks"]');
  const choice = $('#benchmark-x');
  const axes = statsData.benchmarkAxes(points);
  for (const option of choice.options) option.disabled = !axes.includes(option.value);
  if (!axes.includes(choice.value)) choice.value = 'step';
  if (!points.length) return drawNote(container, 'no benchmark measurements yet');
  const { series, data } = statsData.benchmarkSeries(points, choice.value);
  const fractions = series.some((item) => item.fraction);
  const others = series.some((item) => !item.fraction);
  drawChart(container, {
    x: BENCHMARK_X[choice.value],
    series: series.map((item, i) => ({
      label: item.label, color: PALETTE[i % PALETTE.length], scale: item.fraction ? 'fraction' : 'value',
    })),
    axes: [
      ...(fractions ? [{ scale: 'fraction', label: 'rate or score', format: statsData.formatPercent }] : []),
      ...(others ? [{ scale: 'value', label: 'value', format: format.number, side: fractions ? 1 : 3 }] : []),
    ],
  }, data);
}

/** One chart per opponent (win/draw/loss rates, promotions marked); figures made as needed. */
function drawEvalCharts(entries) {
  const holder = $('#eval-charts');
  const groups = statsData.evalsByOpponent(entries);
  const names = groups.length ? groups.map(([opponent]) => `eval-${opponent}`) : ['eval'];
  if (names.join() !== [...holder.querySelectorAll('[data-chart]')].map((node) => node.dataset.chart).join()) {
    removeCharts(holder);
    holder.replaceChildren(...names.map((name, i) =>
      figure(groups.length ? `vs ${groups[i][0]}` : 'Evaluation', name)));
  }
  if (!groups.length) return drawNote($('[data-chart="eval"]'), 'no evaluation matches yet');
  for (const [opponent, matches] of groups) {
    drawChart(holder.querySelector(`[data-chart="eval-${CSS.escape(opponent)}"]`), {
      series: [
        { label: 'win', color: COLOR.win },
        { label: 'draw', color: COLOR.draw },
        { label: 'loss', color: COLOR.loss },
        { label: 'new best', color: COLOR.best, markers: true },
      ],
      axes: [{ scale: 'y', label: 'share of games', format: format.rate, range: [0, 1] }],
    }, statsData.evalSeries(matches));
  }
}

// ---- small DOM helpers -------------------------------------------------------------------------

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== null && text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function card(label, value, note) {
  const view = element('div', null, 'stats-card');
  view.append(element('div', label, 'stats-card-label'));
  const shown = element('div', null, 'stats-card-value');
  shown.append(value);
  view.append(shown);
  if (note) view.append(element('div', note, 'stats-card-note'));
  return view;
}

function figure(caption, chartName) {
  const view = element('figure', null, 'stats-chart');
  const holder = element('div');
  holder.dataset.chart = chartName;
  view.append(element('figcaption', caption), holder);
  return view;
}

function definitions(pairs) {
  const list = element('dl', null, 'stats-facts');
  for (const [term, value] of pairs) {
    const description = element('dd');
    description.append(value);
    list.append(element('dt', term), description);
  }
  return list;
}

/** A <time> that says how long ago `iso` was, kept current by tickAges. */
function age(iso) {
  const view = element('time', statsData.formatAge(iso, Date.now()));
  view.dateTime = iso;
  view.dataset.since = iso;
  return view;
}

function tickAges() {
  for (const view of document.querySelectorAll('[data-since]')) {
    view.textContent = statsData.formatAge(view.dataset.since, Date.now());
  }
}

const isScalar = (value) => value === null || ['string', 'number', 'boolean'].includes(typeof value);
const isPlainObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

start();
