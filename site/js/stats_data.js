// The stats page's data side: reading a run's stats.json and shaping it into chart series.
// Pure functions, no DOM, so `node --test` covers them (site/tests/stats_data.test.mjs).
//
// The schema is docs/stats.md (defined in cartridge_jax/run/stats.py). Every `step` in the file
// is the one gradient-step counter, so the charts share it as their x axis; the benchmark chart
// can also draw strength against compute (the training clock or the positions generated).
// Missing or non-finite numbers arrive as null and stay null here: the charts draw them as gaps.

export const KNOWN_SCHEMA_VERSION = 1;

/** An error whose message is one sentence for the person looking at the page. */
export class StatsPageError extends Error {}

/**
 * The stats object in `text`, the body of `url`; StatsPageError when it cannot be shown.
 * Only what the page relies on is checked; the Python side validates the full schema.
 */
export function parseStats(text, url) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new StatsPageError(`${url} is not valid JSON (${error.message})`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new StatsPageError(`${url} does not hold a stats object`);
  }
  const version = data.schema_version;
  if (!Number.isInteger(version)) {
    throw new StatsPageError(`${url} has no integer schema_version, so it is not a stats.json`);
  }
  if (version > KNOWN_SCHEMA_VERSION) {
    throw new StatsPageError(
      `${url} has schema_version ${version}, this page reads up to ${KNOWN_SCHEMA_VERSION}: ` +
        'update the site to a newer cartridge-jax');
  }
  for (const list of ['history', 'eval_history', 'benchmarks']) {
    if (data[list] !== undefined && !Array.isArray(data[list])) {
      throw new StatsPageError(`${url} has a ${list} that is not a list`);
    }
  }
  return {
    ...data,
    history: data.history ?? [],
    eval_history: data.eval_history ?? [],
    benchmarks: data.benchmarks ?? [],
    last_eval: data.last_eval ?? {},
    losses: data.losses ?? {},
    throughput: data.throughput ?? {},
  };
}

/**
 * Trailing mean of each value and the up to `window - 1` values before it, skipping nulls.
 * A null value stays null, so a gap in the data stays a gap in the average.
 */
export function rollingMean(values, window) {
  const out = new Array(values.length).fill(null);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i] !== null) {
      sum += values[i];
      count += 1;
    }
    const leaving = i - window;
    if (leaving >= 0 && values[leaving] !== null) {
      sum -= values[leaving];
      count -= 1;
    }
    if (values[i] !== null) out[i] = sum / count;
  }
  return out;
}

/** The points of `points` (each with a `step`) in the last `lastSteps` steps up to `latestStep`
 * (all when lastSteps is null). */
export function lastStepsOnly(points, latestStep, lastSteps) {
  if (lastSteps === null) return points;
  const first = latestStep - lastSteps;
  return points.filter((point) => point.step >= first);
}

/** The loss chart's data: x = steps, then total/policy/value losses, raw and averaged over
 * `window` points (no averaged series when window <= 1). */
export function lossSeries(history, window) {
  const raw = LOSS_FIELDS.map(([field]) => history.map((point) => point[field] ?? null));
  const series = LOSS_FIELDS.map(([, label]) => ({ label, raw: window > 1 }));
  const data = [history.map((point) => point.step), ...raw];
  if (window > 1) {
    for (const [i, [, label]] of LOSS_FIELDS.entries()) {
      series.push({ label: `${label} (mean of ${window})`, raw: false });
      data.push(rollingMean(raw[i], window));
    }
  }
  return { series, data };
}

const LOSS_FIELDS = [
  ['total_loss', 'total'],
  ['policy_loss', 'policy'],
  ['value_loss', 'value'],
];

/** One column of `points`, nulls kept: [steps, values]. */
export function fieldSeries(points, field) {
  return [points.map((point) => point.step), points.map((point) => point[field] ?? null)];
}

/**
 * Evaluation entries grouped by opponent: [[opponent, entries], ...], "best" first (the
 * promotion match), the others in the order they first appear.
 */
export function evalsByOpponent(entries) {
  const groups = new Map();
  for (const entry of entries) {
    if (!groups.has(entry.opponent)) groups.set(entry.opponent, []);
    groups.get(entry.opponent).push(entry);
  }
  return [...groups].sort(([a], [b]) => (b === 'best') - (a === 'best'));
}

/** One opponent's chart data: x = steps, win/draw/loss rates, and the win rate again only
 * where the match made a new best model (the markers; undefined elsewhere draws nothing). */
export function evalSeries(entries) {
  return [
    entries.map((entry) => entry.step),
    entries.map((entry) => entry.win_rate ?? null),
    entries.map((entry) => entry.draw_rate ?? null),
    entries.map((entry) => entry.loss_rate ?? null),
    entries.map((entry) => (entry.became_new_best ? entry.win_rate : undefined)),
  ];
}

/** Whether a metric (or a model card's key) is a fraction in [0, 1], shown as a percentage:
 * rates ("mistake_rate", "win_rate", ...) and scores. */
export function isFraction(metric) {
  return metric.endsWith('_rate') || metric === 'score';
}

// The benchmark chart's x axes: name -> the x of a point. Clock and positions are missing (null)
// in stats.json files written before they were recorded.
const BENCHMARK_X = {
  clock: (point) => (Number.isFinite(point.clock_s) ? point.clock_s / 60 : null), // minutes
  positions: (point) => point.positions_generated ?? null,
  step: (point) => point.step,
};

/** The x axes the benchmark chart can use for `points`, of 'clock', 'positions' and 'step': an
 * axis only when every point has its x ('step' always). */
export function benchmarkAxes(points) {
  return Object.keys(BENCHMARK_X).filter((axis) => points.every((point) => BENCHMARK_X[axis](point) !== null));
}

/**
 * Benchmark points as one line per benchmark against `axis` (one of benchmarkAxes(points)):
 * {series: [{label, fraction}], data} with data = [xs, ...values], the xs the union over all
 * benchmarks (clock in minutes). A benchmark not measured at an x holds undefined there (the
 * line continues across it); a measurement that is null stays null (a gap).
 */
export function benchmarkSeries(points, axis) {
  const xOf = BENCHMARK_X[axis];
  const series = [];
  const byLabel = new Map();
  for (const point of points) {
    const label = `${point.name} ${point.metric}`;
    if (!byLabel.has(label)) {
      byLabel.set(label, new Map());
      series.push({ label, fraction: isFraction(point.metric) });
    }
    byLabel.get(label).set(xOf(point), point.value ?? null);
  }
  const xs = [...new Set(points.map(xOf))].sort((a, b) => a - b);
  const data = [xs, ...series.map(({ label }) => xs.map((x) => byLabel.get(label).get(x)))];
  return { series, data };
}

/** "ok" (win rate >= 70%), "fair" (>= 50%) or "poor": the colour of a result card. */
export function winRateGrade(winRate) {
  if (winRate >= 0.7) return 'ok';
  if (winRate >= 0.5) return 'fair';
  return 'poor';
}

// ---- formatting: numbers and times as people read them ------------------------------------

const DASH = '–';

/** 1234567 -> "1,234,567"; null -> "–". */
export function formatCount(value) {
  return value === null || value === undefined ? DASH : Math.round(value).toLocaleString('en-US');
}

/** A float with `digits` significant digits, small and large ones in exponent form. */
export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e6)) return Number(value.toPrecision(digits)).toExponential();
  return String(Number(value.toPrecision(digits)));
}

/** A size at a glance: 950 -> "950", 12345 -> "12.3k", 4.2e6 -> "4.2M". */
export function formatCompact(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return DASH;
  for (const [size, suffix] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
    if (Math.abs(value) >= size) return `${Number((value / size).toPrecision(3))}${suffix}`;
  }
  return String(Number(value.toPrecision(3)));
}

/** 0.9712 -> "97.1%". */
export function formatPercent(fraction) {
  return fraction === null || fraction === undefined ? DASH : `${(100 * fraction).toFixed(1)}%`;
}

/** Seconds as "42 s", "3 min 20 s", "2 h 05 min" or "3 d 4 h". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return DASH;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, '0')} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor(s / 3600) % 24} h`;
}

/** How long before `nowMs` the ISO 8601 time `iso` was: "12 s ago", "3 min ago", ... */
export function formatAge(iso, nowMs) {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return DASH;
  const seconds = Math.max(0, (nowMs - then) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}
