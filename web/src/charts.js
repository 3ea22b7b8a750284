// charts.js: uPlot line charts of the history API's columns (docs/api.md
// "History"). One chart per quantity; the x axis is time, the values come
// as columns with null where a value was not available, which uPlot draws
// as a gap.
import uPlot from './vendor/uplot/uPlot.esm.js';
import { fmtBytes } from './util.js';



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
