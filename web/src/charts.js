// charts.js: uPlot line charts of the history API's columns (docs/api.md
// "History"). One chart per quantity; the x axis is time, the values come
// as columns with null where a value was not available, which uPlot draws
// as a gap.
import uPlot from './vendor/uplot/uPlot.esm.js';

export function fmtBytes(v) {
  if (v == null || !isFinite(v)) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${u[i]}`;
}

const fmt = {
  percent: (v) => (v == null ? '–' : `${v.toFixed(1)} %`),
  bytes: fmtBytes,
  rate: (v) => (v == null ? '–' : `${fmtBytes(v)}/s`),
};

const COLORS = ['#2f6fde', '#d9730d', '#1a9c5b', '#b8326b'];

// A chart in container for the given series [{label, key}] of one unit.
export class Chart {
  constructor(container, title, unit, series) {
    this.keys = series.map((s) => s.key);
    this.unit = unit;
    const f = fmt[unit];
    const width = Math.max(240, container.clientWidth || 400);
    this.plot = new uPlot({
      title,
      width,
      height: 180,
      scales: { x: { time: true }, y: unit === 'percent' ? { range: (u, lo, hi) => [0, Math.max(5, hi)] } : { range: (u, lo, hi) => [0, Math.max(1, hi)] } },
      axes: [{}, { values: (u, vals) => vals.map(f), size: 70 }],
      series: [{}, ...series.map((s, i) => ({
        label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5,
        value: (u, v) => f(v),
      }))],
    }, [[], ...series.map(() => [])], container);
    this.container = container;
    this.resize = () => this.plot.setSize({ width: Math.max(240, container.clientWidth), height: 180 });
    window.addEventListener('resize', this.resize);
  }

  // samples: the "samples" object of a history reply (columns).
  setData(samples) {
    const data = [samples.t || [], ...this.keys.map((k) => samples[k] || [])];
    this.plot.setData(data);
    this.points = data[0].length;
  }

  destroy() {
    window.removeEventListener('resize', this.resize);
    this.plot.destroy();
  }
}

// Append new columns (a ?since= reply) to what we have, keeping the last
// hour only.
export function mergeSamples(have, add, windowSeconds) {
  if (!have) return add;
  const out = {};
  const cutoff = (add.t?.length ? add.t[add.t.length - 1] : Date.now() / 1000) - windowSeconds;
  let drop = 0;
  const t = (have.t || []).concat(add.t || []);
  while (drop < t.length && t[drop] < cutoff) drop++;
  for (const k of Object.keys(add)) out[k] = (have[k] || []).concat(add[k] || []).slice(drop);
  return out;
}
