// Line charts for the stats page: a thin layer over uPlot (site/vendor/uplot) that sizes a
// chart to its container, keeps it across data refreshes, and shows values in a tooltip.
//
// A chart is described by a spec:
//   {x?: {label, format, whole?}, series: [{label, color, faint?, markers?, scale?}],
//    axes: [{scale, label, format, side?, range?}]}
// and drawn from uPlot's column data: [xs, ys_1, ..., ys_n] with xs ascending (steps unless x
// says otherwise; `whole`: the xs are counts, so ticks fall on whole numbers).
// null in a y column is a gap; undefined means "no value at this x" and the line continues.

import uPlot from '../vendor/uplot/uPlot.esm.js';

const HEIGHT_PX = 220;
// Tick spacings for an axis of counts: whole numbers only (1, 2, 5, 10, 20, 50, ...).
const WHOLE_INCREMENTS = Array.from({ length: 36 }, (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3));
const STEP_AXIS = { label: 'step', format: (step) => step.toLocaleString('en-US'), whole: true };
const charts = new Map(); // container -> {chart, key, resize}

/** Draws `data` in `container`; a chart with the same series is updated in place, keeping the
 * user's zoom (drag to zoom, double-click to reset). Sets `data-points` to the point count. */
export function drawChart(container, spec, data) {
  container.dataset.points = String(data[0].length);
  const key = JSON.stringify(spec, (name, value) => (typeof value === 'function' ? String(value) : value));
  const held = charts.get(container);
  if (held && held.key === key) {
    const { min, max } = held.chart.scales.x;
    const old = held.chart.data[0];
    const zoomed = old.length > 1 && (min > old[0] || max < old[old.length - 1]);
    held.chart.setData(data);
    if (zoomed) held.chart.setScale('x', { min, max });
    return;
  }
  removeChart(container);
  container.replaceChildren();
  const chart = new uPlot(options(container, spec), data, container);
  const resize = new ResizeObserver(() => chart.setSize({ width: widthOf(container), height: HEIGHT_PX }));
  resize.observe(container);
  charts.set(container, { chart, key, resize });
}

/** Replaces any chart in `container` with a one-line note (e.g. "no evaluations yet"). */
export function drawNote(container, text) {
  removeChart(container);
  container.dataset.points = '0';
  const note = document.createElement('p');
  note.className = 'chart-note';
  note.textContent = text;
  container.replaceChildren(note);
}

/** Removes every chart inside `root` (before drawing another game, or with other filters). */
export function removeCharts(root) {
  for (const container of [...charts.keys()]) if (root.contains(container)) removeChart(container);
}

function removeChart(container) {
  const held = charts.get(container);
  if (!held) return;
  held.resize.disconnect();
  held.chart.destroy();
  charts.delete(container);
}

function widthOf(container) {
  return Math.max(200, container.clientWidth);
}

function options(container, spec) {
  const style = getComputedStyle(container);
  const text = style.color;
  const grid = style.getPropertyValue('--chart-grid').trim() || 'rgba(127, 127, 127, 0.2)';
  const background = style.getPropertyValue('--chart-background').trim() || '#fff';
  const formats = Object.fromEntries(spec.axes.map((axis) => [axis.scale, axis.format]));
  const x = spec.x ?? STEP_AXIS;
  return {
    width: widthOf(container),
    height: HEIGHT_PX,
    scales: { x: { time: false }, ...Object.fromEntries(spec.axes.map((axis) => [axis.scale, axis.range ? { range: axis.range } : {}])) },
    series: [
      { label: x.label },
      ...spec.series.map((series) => seriesOptions(series, background)),
    ],
    axes: [
      {
        label: x.label,
        stroke: text,
        grid: { stroke: grid },
        ticks: { stroke: grid },
        ...(x.whole ? { incrs: WHOLE_INCREMENTS } : {}),
        values: (u, splits) => splits.map((value) => x.format(value)),
      },
      ...spec.axes.map((axis, i) => ({
        scale: axis.scale,
        label: axis.label,
        side: axis.side ?? 3,
        stroke: text,
        size: 60,
        grid: { show: i === 0, stroke: grid },
        ticks: { stroke: grid },
        values: (u, splits) => splits.map((value) => axis.format(value)),
      })),
    ],
    legend: { live: false },
    cursor: { drag: { x: true, y: false } },
    plugins: [tooltip(spec, x, formats)],
  };
}

function seriesOptions(series, background) {
  const base = { label: series.label, scale: series.scale ?? 'y', stroke: series.color };
  if (series.markers) {
    // Points only, no line: marks the x positions where something happened.
    return { ...base, paths: () => null, points: { show: true, size: 11, width: 2, fill: series.color } };
  }
  return {
    ...base,
    width: series.faint ? 1 : 2,
    stroke: series.faint ? `${series.color}66` : series.color,
    points: { size: 5, fill: background },
  };
}

/** A box beside the cursor listing the x (the step, unless the spec says) and every shown
 * series' value there. */
function tooltip(spec, x, formats) {
  let box;
  return {
    hooks: {
      init: (u) => {
        box = document.createElement('div');
        box.className = 'chart-tooltip';
        box.hidden = true;
        u.over.appendChild(box);
      },
      setCursor: (u) => {
        const i = u.cursor.idx;
        if (i === null || i === undefined) {
          box.hidden = true;
          return;
        }
        const rows = [row(x.label, x.format(u.data[0][i]))];
        spec.series.forEach((series, s) => {
          const value = u.data[s + 1][i];
          if (!u.series[s + 1].show || value === undefined) return;
          rows.push(row(series.label, value === null ? '–' : formats[series.scale ?? 'y'](value), series.color));
        });
        box.replaceChildren(...rows);
        box.hidden = false;
        const left = u.cursor.left + 14;
        const flip = left + box.offsetWidth > u.over.clientWidth;
        box.style.left = `${Math.max(0, flip ? u.cursor.left - box.offsetWidth - 14 : left)}px`;
        box.style.top = `${Math.max(0, u.cursor.top - box.offsetHeight / 2)}px`;
      },
    },
  };
}

function row(label, value, color) {
  const line = document.createElement('div');
  if (color) {
    const swatch = document.createElement('span');
    swatch.className = 'chart-swatch';
    swatch.style.background = color;
    line.append(swatch);
  }
  const name = document.createElement('span');
  name.textContent = `${label}: `;
  const number = document.createElement('b');
  number.textContent = value;
  line.append(name, number);
  return line;
}
