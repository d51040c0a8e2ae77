// The stats page's data functions (js/stats_data.js) against brute-force references and
// hand-worked values. The page itself runs in a real browser in tests/test_stats_page.py.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as statsData from '../js/stats_data.js';

/** A reproducible pseudo-random sequence in [0, 1) (an LCG; quality is no concern here). */
function randoms(seed) {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

test('rollingMean equals the mean of the non-null values in each trailing window', () => {
  const random = randoms(7);
  const values = Array.from({ length: 60 }, () => (random() < 0.2 ? null : 10 * random() - 5));
  for (const window of [1, 2, 5, 20, 100]) {
    const got = statsData.rollingMean(values, window);
    values.forEach((value, i) => {
      if (value === null) return assert.equal(got[i], null, `gap kept at ${i}`);
      const seen = values.slice(Math.max(0, i - window + 1), i + 1).filter((v) => v !== null);
      const mean = seen.reduce((a, b) => a + b, 0) / seen.length;
      assert.ok(Math.abs(got[i] - mean) < 1e-9, `window ${window}, index ${i}: ${got[i]} vs ${mean}`);
    });
  }
});

test('lastStepsOnly keeps the points of the last N steps, all for null', () => {
  const points = [0, 50, 100, 150, 200].map((step) => ({ step }));
  assert.deepEqual(statsData.lastStepsOnly(points, 200, 100).map((p) => p.step), [100, 150, 200]);
  assert.deepEqual(statsData.lastStepsOnly(points, 200, 1000), points);
  assert.equal(statsData.lastStepsOnly(points, 200, null), points);
});

test('lossSeries adds one averaged line per loss when a window is chosen', () => {
  const history = [
    { step: 4, total_loss: 3, policy_loss: 2, value_loss: 1 },
    { step: 8, total_loss: null, policy_loss: null, value_loss: null },
    { step: 12, total_loss: 1, policy_loss: 0.5, value_loss: 0.5 },
  ];
  const plain = statsData.lossSeries(history, 1);
  assert.deepEqual(plain.data, [[4, 8, 12], [3, null, 1], [2, null, 0.5], [1, null, 0.5]]);
  assert.deepEqual(plain.series.map((s) => s.raw), [false, false, false]);
  const smoothed = statsData.lossSeries(history, 2);
  assert.equal(smoothed.series.length, 6);
  assert.deepEqual(smoothed.data[4], [3, null, 1]); // the null's neighbours average only themselves
});

test('evalsByOpponent puts "best" first and keeps first-appearance order otherwise', () => {
  const entries = ['random', 'greedy', 'best', 'random', 'best'].map((opponent, i) => ({ opponent, step: i }));
  const groups = statsData.evalsByOpponent(entries);
  assert.deepEqual(groups.map(([opponent]) => opponent), ['best', 'random', 'greedy']);
  assert.deepEqual(groups[0][1].map((e) => e.step), [2, 4]);
});

test('evalSeries marks new-best matches only', () => {
  const entries = [
    { step: 10, win_rate: 0.5, draw_rate: 0.2, loss_rate: 0.3, became_new_best: false },
    { step: 20, win_rate: 0.7, draw_rate: 0.1, loss_rate: 0.2, became_new_best: true },
  ];
  assert.deepEqual(statsData.evalSeries(entries),
    [[10, 20], [0.5, 0.7], [0.2, 0.1], [0.3, 0.2], [undefined, 0.7]]);
});

test('benchmarkSeries aligns each benchmark on the union of steps', () => {
  const points = [
    { step: 100, name: 'a', metric: 'mistake_rate', value: 0.5 },
    { step: 100, name: 'b', metric: 'mean_disc_loss', value: 4 },
    { step: 200, name: 'a', metric: 'mistake_rate', value: null },
    { step: 300, name: 'b', metric: 'mean_disc_loss', value: 2 },
  ];
  const { series, data } = statsData.benchmarkSeries(points, 'step');
  assert.deepEqual(series, [
    { label: 'a mistake_rate', fraction: true }, { label: 'b mean_disc_loss', fraction: false }]);
  // null: measured, no number (a gap); undefined: not measured at that step.
  assert.deepEqual(data, [[100, 200, 300], [0.5, null, undefined], [4, undefined, 2]]);
});

test('benchmarkSeries draws against the training clock in minutes or the positions generated', () => {
  // Two sets measured on each network, the @128 one by the strength suite; 'vs greedy@128' a match.
  const networks = [
    { step: 40, clock_s: 90, positions_generated: 5000 },
    { step: 80, clock_s: 300, positions_generated: 10000 },
  ];
  const points = networks.flatMap((network, i) => [
    { ...network, name: 'connect4/Test_L2_R1@128', metric: 'mistake_rate', value: 0.2 - 0.1 * i },
    { ...network, name: 'vs greedy@128', metric: 'score', value: 0.5 + 0.25 * i },
  ]);
  const clock = statsData.benchmarkSeries(points, 'clock');
  assert.deepEqual(clock.series.map((item) => item.label),
    ['connect4/Test_L2_R1@128 mistake_rate', 'vs greedy@128 score']);
  assert.deepEqual(clock.data, [[1.5, 5], [0.2, 0.1], [0.5, 0.75]]);
  assert.deepEqual(statsData.benchmarkSeries(points, 'positions').data[0], [5000, 10000]);
  assert.deepEqual(statsData.benchmarkSeries(points, 'step').data.slice(1), clock.data.slice(1));
});

test('benchmarkAxes offers the clock and positions only when every point has them', () => {
  const full = { step: 1, clock_s: 0, positions_generated: 0 };
  assert.deepEqual(statsData.benchmarkAxes([full, full]), ['clock', 'positions', 'step']);
  // A file written before the clock was recorded: null or absent.
  assert.deepEqual(statsData.benchmarkAxes([full, { ...full, clock_s: null }]), ['positions', 'step']);
  assert.deepEqual(statsData.benchmarkAxes([full, { step: 2 }]), ['step']);
});

test('isFraction: rates and scores are fractions, other measures are not', () => {
  for (const metric of ['mistake_rate', 'raw_best_move_rate', 'score', 'win_rate']) {
    assert.ok(statsData.isFraction(metric), metric);
  }
  for (const metric of ['mean_disc_loss', 'games', 'wall_time_s']) assert.ok(!statsData.isFraction(metric), metric);
});

test('parseStats refuses what the page cannot show, with one-line reasons', () => {
  const url = 'models/x/stats.json';
  const refuses = (text, pattern) => assert.throws(() => statsData.parseStats(text, url),
    (error) => error instanceof statsData.StatsPageError && pattern.test(error.message));
  refuses('{"schema_version": 1', /is not valid JSON/);
  refuses('[1, 2]', /does not hold a stats object/);
  refuses('{"schema_version": "1"}', /no integer schema_version/);
  refuses(`{"schema_version": ${statsData.KNOWN_SCHEMA_VERSION + 1}}`,
    new RegExp(`schema_version ${statsData.KNOWN_SCHEMA_VERSION + 1}, this page reads up to`));
  refuses('{"schema_version": 1, "history": {}}', /history that is not a list/);
  const stats = statsData.parseStats('{"schema_version": 1, "step": 5}', url);
  assert.deepEqual([stats.step, stats.history, stats.eval_history, stats.benchmarks], [5, [], [], []]);
});

test('numbers and times read as people write them', () => {
  assert.equal(statsData.formatCount(1234567), '1,234,567');
  assert.equal(statsData.formatCount(null), '–');
  assert.equal(statsData.formatNumber(0.000925), '9.25e-4');
  assert.equal(statsData.formatNumber(2.80812), '2.808');
  assert.equal(statsData.formatNumber(null), '–');
  assert.equal(statsData.formatCompact(950), '950');
  assert.equal(statsData.formatCompact(12345), '12.3k');
  assert.equal(statsData.formatCompact(4.2e6), '4.2M');
  assert.equal(statsData.formatPercent(0.9712), '97.1%');
  assert.equal(statsData.formatDuration(42), '42 s');
  assert.equal(statsData.formatDuration(200), '3 min 20 s');
  assert.equal(statsData.formatDuration(7500), '2 h 05 min');
  assert.equal(statsData.formatDuration(3 * 86400 + 4 * 3600 + 5), '3 d 4 h');
  const now = Date.parse('2025-01-01T12:00:00Z');
  assert.equal(statsData.formatAge('2025-01-01T11:59:48+00:00', now), '12 s ago');
  assert.equal(statsData.formatAge('2025-01-01T11:57:00+00:00', now), '3 min ago');
  assert.equal(statsData.formatAge('2024-12-30T12:00:00+00:00', now), '2 d ago');
  assert.equal(statsData.formatAge('not a time', now), '–');
});

test('winRateGrade follows the original page: green >= 70%, orange >= 50%, red below', () => {
  assert.deepEqual([0.7, 0.69, 0.5, 0.49].map(statsData.winRateGrade), ['ok', 'fair', 'fair', 'poor']);
});
