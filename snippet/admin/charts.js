// Line charts for the console (snippet/admin/README.md): every element with `data-chart` and a
// `data-series` JSON attribute gets a uPlot chart appended, sized to its container. The page
// keeps the numbers in a table and its own caption; the chart adds a picture of them, so a page
// without JS, or with bad data, still says everything.
//
// Works under `default-src 'self'; script-src 'self'; style-src 'self'`: uPlot and this module
// style elements through the CSSOM (element.style.x = ...), which CSP allows, and the CSS
// comes from charts.css.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './charts.css';
import { text } from './texts.js';

// Okabe & Ito's palette, told apart by people with any common colour-vision deficiency, each
// series with its own dash pattern as well, so print and greyscale work too.
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
const DASHES = [[], [8, 4], [2, 3], [12, 4, 2, 4], [4, 4], [1, 2], [16, 6]];

function parseDay(iso) {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso);
  if (!match) throw new Error(`not an ISO date: ${iso}`);
  return Date.UTC(+match[1], +match[2] - 1, +match[3]) / 1000;
}

function formatter(kind, lang) {
  if (kind === 'rate') {
    const percent = new Intl.NumberFormat(lang, { style: 'percent', maximumFractionDigits: 1 });
    return (v) => (v == null ? '–' : percent.format(v));
  }
  const number = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
  return (v) => (v == null ? '–' : number.format(v));
}

/** Checks and converts a `data-series` value into uPlot's columns. */
function readSeries(json) {
  const data = JSON.parse(json);
  if (!Array.isArray(data.x) || !Array.isArray(data.series) || !data.series.length) {
    throw new Error('data-series needs "x" (ISO dates) and a non-empty "series"');
  }
  const columns = [data.x.map(parseDay)];
  for (const s of data.series) {
    if (typeof s.label !== 'string' || !Array.isArray(s.values) || s.values.length !== data.x.length) {
      throw new Error(`series ${JSON.stringify(s.label)} needs a label and one value per x`);
    }
    columns.push(s.values.map((v) => (typeof v === 'number' && isFinite(v) ? v : null)));
  }
  return { y: data.y === 'rate' ? 'rate' : 'conversions', labels: data.series.map((s) => s.label), x: data.x, columns };
}

function heightFor(width) {
  return Math.round(Math.min(360, Math.max(200, width * 0.45)));
}

function draw(element) {
  const lang = document.documentElement.lang || 'en';
  const t = text(lang);
  const chart = readSeries(element.getAttribute('data-series'));
  const format = formatter(chart.y, lang);
  // The y axis's name: what `y` says by default, or the page's own (a score, say).
  const yName = element.getAttribute('data-chart-y') || t[chart.y];
  const day = new Intl.DateTimeFormat(lang, { timeZone: 'UTC', day: 'numeric', month: 'short' });
  const fullDay = new Intl.DateTimeFormat(lang, { timeZone: 'UTC', dateStyle: 'medium' });

  // The picture is one image to assistive technology; its name says what it shows, and the
  // table on the page holds the numbers.
  const box = document.createElement('div');
  box.className = 'tp-chart';
  box.setAttribute('role', 'img');
  box.setAttribute(
    'aria-label',
    element.getAttribute('data-chart-label') ||
      t.chartLabel(yName, chart.labels, chart.x[0], chart.x[chart.x.length - 1]),
  );
  element.appendChild(box);

  const width = () => Math.max(240, box.clientWidth || element.clientWidth);
  const options = {
    width: width(),
    height: heightFor(width()),
    // Dates are days in UTC, as the reports count them; uPlot would show local midnight.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    axes: [
      { values: (u, splits) => splits.map((s) => day.format(new Date(s * 1000))), space: 60 },
      { values: (u, splits) => splits.map(format), size: 64, label: yName },
    ],
    series: [
      { label: t.day, value: (u, v) => (v == null ? '–' : fullDay.format(new Date(v * 1000))) },
      ...chart.labels.map((label, i) => ({
        label,
        stroke: COLOURS[i % COLOURS.length],
        dash: DASHES[i % DASHES.length],
        width: 2,
        points: { show: chart.x.length <= 31, size: 6 },
        spanGaps: false,
        value: (u, v) => format(v),
      })),
    ],
  };
  const plot = new uPlot(options, chart.columns, box);
  // Resizes with its container (a sidebar closing, a tablet turned), not only the window.
  let last = options.width;
  new ResizeObserver(() => {
    const now = width();
    if (now !== last) {
      last = now;
      plot.setSize({ width: now, height: heightFor(now) });
    }
  }).observe(element);
  element.classList.add('tp-chart-drawn');
  return plot;
}

function drawAll() {
  for (const element of document.querySelectorAll('[data-chart][data-series]')) {
    if (element.classList.contains('tp-chart-drawn')) continue;
    try {
      draw(element);
    } catch (error) {
      // The table stays; a chart that cannot be drawn must not stop the others.
      console.warn('touchpoint chart:', error);
    }
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', drawAll);
} else {
  drawAll();
}

// For pages that add charts later, and for tests.
window.touchpointCharts = { drawAll };
