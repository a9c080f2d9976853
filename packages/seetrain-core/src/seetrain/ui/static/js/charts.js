// One chart per metric key, drawn with uPlot (a global from static/vendor/uPlot.iife.min.js).
//
// The server sends each series downsampled to about two points per pixel (a min/max envelope,
// so spikes survive); dragging over a chart zooms in and fetches the exact points of that step
// range, double-clicking zooms back out. Several runs overlay on one chart (compare view).

import {h, fmtNumber, fmtDuration, fmtDate} from "./dom.js";

/** Every live chart by key (and run ids): read by the browser tests and handy in a console. */
export const registry = new Map();
window.__seetrain = Object.assign(window.__seetrain || {}, {charts: registry});

const AXIS = {stroke: "#64748b", grid: {stroke: "#eef0f4", width: 1}, ticks: {stroke: "#e2e8f0", width: 1, size: 4},
  font: "11px ui-sans-serif, system-ui, -apple-system, 'Segoe UI', sans-serif"};
const HEIGHT = 210;

// Charts are drawn when they come near the viewport: a page of 200 keys paints its first
// screen as fast as a page of 6, and the rest draw as they are scrolled to.
const visibility = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const chart = e.target.__chart;
    if (!chart) continue;
    chart.visible = e.isIntersecting;
    if (chart.visible && chart.pending) chart.redraw(true);
  }
}, {rootMargin: "300px 0px"});

/** TensorBoard's debiased exponential moving average; NaN/null points pass through. */
export function ema(values, weight) {
  const out = new Array(values.length);
  let last = 0, n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !isFinite(v)) { out[i] = v; continue; }
    last = last * weight + (1 - weight) * v;
    n += 1;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

function isAscending(xs) {
  for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) return false;
  return true;
}

/** Index of the point of sorted ``xs`` nearest to ``x``. */
function nearest(xs, x) {
  let lo = 0, hi = xs.length - 1;
  if (hi < 0) return -1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid; else hi = mid;
  }
  return Math.abs(xs[lo] - x) <= Math.abs(xs[hi] - x) ? lo : hi;
}

export function xLabel(mode) {
  return mode === "wall" ? "wall time" : mode === "relative" ? "relative time" : "step";
}

function fmtX(mode, x) {
  if (x === null || x === undefined) return "—";
  if (mode === "wall") {
    const d = new Date(x * 1000);
    return fmtDate(x) + ":" + String(d.getSeconds()).padStart(2, "0");
  }
  if (mode === "relative") return fmtDuration(x);
  return `step ${Math.round(x)}`;
}

export class MetricChart {
  /**
   * @param key      the metric key
   * @param runs     [{id, name, color, created_at}]: one line per run
   * @param settings a ChartSettings (x axis, log, smoothing)
   * @param loader   (runId, key, {step_min, step_max, max_points}) => Promise<series>: zoom and refetch
   * @param syncKey  charts with the same key share their cursor
   */
  constructor({key, runs, settings, loader, syncKey = "seetrain", title = null}) {
    this.key = key;
    this.runs = runs;
    this.settings = settings;
    this.loader = loader;
    this.syncKey = syncKey;
    this.full = new Map();   // runId -> series {steps, values, times, total, exact}
    this.zoom = null;        // {range: [min, max], data: Map(runId -> series)}
    this.u = null;
    this.prepared = [];      // per run: {run, xs, ys, steps} in x order, for hover look-ups
    this.maxPoints = 2000;
    this.zoomSeq = 0;

    this.legend = h("div", {class: "legend"});
    this.badge = h("span", {class: "badge", title: ""});
    this.resetBtn = h("button", {type: "button", class: "link-btn reset-zoom", hidden: true,
      title: "Show the whole range (or double-click the chart)", onclick: () => this.resetZoom()}, "Reset zoom");
    this.plot = h("div", {class: "plot", style: {height: `${HEIGHT}px`}});
    this.el = h("div", {class: "chart-card card", dataset: {key, state: "loading"}},
      h("div", {class: "chart-head"},
        h("span", {class: "chart-title", title: key}, title || key),
        h("span", {class: "chart-tools"}, this.resetBtn, this.badge)),
      this.plot,
      this.legend);
    registry.set(this.registryKey(), this);
    this.visible = false;
    this.pending = false;
    this.el.__chart = this;
    visibility.observe(this.el);
  }

  registryKey() {
    return this.runs.length === 1 ? this.key : `${this.key}|${this.runs.map((r) => r.id).join(",")}`;
  }

  /** Points per series worth fetching: two per horizontal pixel (one min, one max). */
  pointsForWidth() {
    const w = this.plot.clientWidth || 480;
    return Math.max(200, Math.min(8000, 2 * Math.round(w)));
  }

  setSeries(runId, series, draw = true) {
    this.full.set(runId, series);
    if (draw) this.redraw();
  }

  /** Appends the points of a live run after what is shown; refetches when it grows too big. */
  appendSeries(runId, tail) {
    const cur = this.full.get(runId);
    if (!cur) { this.setSeries(runId, tail); return; }
    const last = cur.steps.length ? cur.steps[cur.steps.length - 1] : -Infinity;
    let i = 0;
    while (i < tail.steps.length && tail.steps[i] <= last) i++;
    if (i >= tail.steps.length) return;
    const offset = cur.steps.length - i;
    cur.nonfinite = cur.nonfinite || {};
    for (const [idx, name] of Object.entries(tail.nonfinite || {})) if (Number(idx) >= i) cur.nonfinite[offset + Number(idx)] = name;
    cur.steps = cur.steps.concat(tail.steps.slice(i));
    cur.values = cur.values.concat(tail.values.slice(i));
    cur.times = cur.times.concat(tail.times.slice(i));
    cur.total += tail.steps.length - i;
    if (cur.steps.length > 2 * this.maxPoints && this.loader) {
      // downsample again on the server rather than draw ever more points
      this.loader(runId, this.key, {max_points: this.maxPoints}).then((s) => this.setSeries(runId, s)).catch(() => {});
    }
    if (!this.zoom) this.redraw(false);
  }

  lastStep(runId) {
    const s = this.full.get(runId);
    return s && s.steps.length ? s.steps[s.steps.length - 1] : null;
  }

  /** Build the aligned uPlot data for the current settings. */
  buildData() {
    const mode = this.settings.get("xAxis");
    const w = this.settings.get("smoothing");
    const source = this.zoom ? this.zoom.data : this.full;
    const tables = [];
    this.prepared = [];
    for (const run of this.runs) {
      const s = source.get(run.id);
      if (!s) continue;
      let xs = mode === "step" ? s.steps : mode === "wall" ? s.times : s.times.map((t) => t - run.created_at);
      let ys = s.values;
      let steps = s.steps;
      // what a null value was (NaN, Infinity): shown in the legend instead of a blank
      let notes = s.nonfinite && Object.keys(s.nonfinite).length ? ys.map((v, i) => s.nonfinite[i] ?? null) : null;
      if (!isAscending(xs)) {
        const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
        xs = order.map((i) => xs[i]); ys = order.map((i) => ys[i]); steps = order.map((i) => steps[i]);
        if (notes) notes = order.map((i) => notes[i]);
      }
      const table = [xs, ys];
      if (w > 0) table.push(ema(ys, w));
      tables.push(table);
      this.prepared.push({run, xs, ys, steps, notes, smooth: w > 0 ? table[2] : null});
    }
    if (!tables.length) return null;
    return tables.length === 1 ? tables[0] : uPlot.join(tables);
  }

  buildOptions(data) {
    const mode = this.settings.get("xAxis");
    const smoothing = this.settings.get("smoothing") > 0;
    const multi = this.prepared.length > 1;
    const series = [{label: xLabel(mode)}];
    for (const p of this.prepared) {
      const name = multi ? p.run.name : this.key;
      if (smoothing) {
        series.push({label: `${name} (raw)`, stroke: p.run.color + "44", width: 1, points: {show: false}});
        series.push({label: name, stroke: p.run.color, width: 1.75, points: {show: false}});
      } else {
        series.push({label: name, stroke: p.run.color, width: 1.5,
          points: {show: (u, si, i0, i1) => i1 - i0 < 40, size: 5, fill: p.run.color}});
      }
    }
    let distr = 1;
    if (this.settings.get("log")) {
      const positive = this.prepared.every((p) => p.ys.every((v) => v === null || v > 0));
      distr = positive ? 3 : 4;   // log10, or asinh when a value is zero or negative
    }
    const xValues = mode === "relative" ? (u, splits) => splits.map((v) => fmtDuration(v)) : undefined;
    return {
      width: Math.max(200, this.plot.clientWidth || 480),
      height: HEIGHT,
      legend: {show: false},
      padding: [8, 12, 0, 4],
      scales: {x: {time: mode === "wall"}, y: {distr, log: 10, asinh: 1}},
      series,
      axes: [
        {...AXIS, ...(xValues ? {values: xValues} : {}), size: 32},
        {...AXIS, size: 56, values: (u, splits) => splits.map((v) => fmtNumber(v))},
      ],
      cursor: {
        sync: {key: this.syncKey + ":" + mode},
        drag: {x: true, y: false, setScale: true},
        points: {size: 7},
        bind: {dblclick: () => null},   // ours resets the zoom *and* the fetched data
      },
      hooks: {
        setCursor: [(u) => this.updateLegend(u.cursor.idx)],
        setScale: [(u, key) => { if (key === "x") this.onScale(u.scales.x.min, u.scales.x.max); }],
      },
    };
  }

  /** (Re)draw: a new uPlot when the options change, else new data on the same one. */
  redraw(rebuild = true) {
    if (!this.visible) {   // drawn once it scrolls into view
      this.pending = true;
      this.updateMeta();
      if (this.full.size) this.el.dataset.state = "pending";
      return;
    }
    this.pending = false;
    const data = this.buildData();
    this.updateMeta();
    if (!data) return;
    if (!this.u || rebuild) {
      if (this.u) this.u.destroy();
      this.u = new uPlot(this.buildOptions(data), data, this.plot);
      this.u.over.addEventListener("dblclick", () => this.resetZoom());
      if (!this.resizer) {
        this.resizer = new ResizeObserver(() => {
          if (this.u && this.plot.clientWidth) this.u.setSize({width: this.plot.clientWidth, height: HEIGHT});
        });
        this.resizer.observe(this.plot);
      }
    } else {
      this.u.setData(data, !this.zoom);
    }
    if (rebuild || this.u) this.updateLegend(null);
    this.el.dataset.state = "ready";
  }

  fullRange() {
    let lo = Infinity, hi = -Infinity;
    const mode = this.settings.get("xAxis");
    for (const run of this.runs) {
      const s = this.full.get(run.id);
      if (!s || !s.steps.length) continue;
      const xs = mode === "step" ? s.steps : mode === "wall" ? s.times : s.times.map((t) => t - run.created_at);
      for (const x of [xs[0], xs[xs.length - 1]]) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
    }
    return [lo, hi];
  }

  onScale(min, max) {
    if (min === null || max === null || !this.loader) return;
    const [lo, hi] = this.fullRange();
    const span = Math.max(hi - lo, 1e-9);
    const tol = span * 1e-6;
    if (min <= lo + tol && max >= hi - tol) return;           // the whole range: not a zoom
    if (this.zoom && Math.abs(this.zoom.range[0] - min) <= tol && Math.abs(this.zoom.range[1] - max) <= tol) return;
    this.fetchZoom(min, max);
  }

  /** Fetch the points of [min, max] (x units) of every run: exact once few enough. */
  async fetchZoom(min, max) {
    const seq = ++this.zoomSeq;
    const mode = this.settings.get("xAxis");
    const maxPoints = this.pointsForWidth();
    const requests = [];
    for (const run of this.runs) {
      const s = this.full.get(run.id);
      if (!s || !s.steps.length) continue;
      let stepMin, stepMax;
      if (mode === "step") {
        stepMin = Math.floor(min); stepMax = Math.ceil(max);
      } else {
        // the steps whose time falls in the range, widened by one point each side
        const xs = mode === "wall" ? s.times : s.times.map((t) => t - run.created_at);
        let first = -1, last = -1;
        for (let i = 0; i < xs.length; i++) if (xs[i] >= min && xs[i] <= max) { if (first < 0) first = i; last = i; }
        if (first < 0) { first = Math.max(0, nearest(xs, min)); last = Math.max(first, nearest(xs, max)); }
        stepMin = s.steps[Math.max(0, first - 1)];
        stepMax = s.steps[Math.min(xs.length - 1, last + 1)];
      }
      requests.push(this.loader(run.id, this.key, {step_min: stepMin, step_max: stepMax, max_points: maxPoints})
        .then((series) => [run.id, series]));
    }
    this.el.dataset.state = "zooming";
    try {
      const results = await Promise.all(requests);
      if (seq !== this.zoomSeq) return;   // a newer zoom or a reset won
      this.zoom = {range: [min, max], data: new Map(results)};
      this.redraw(false);
      this.u.setScale("x", {min, max});
    } catch (e) {
      this.el.dataset.state = "ready";
      this.badge.textContent = "zoom failed";
      this.badge.title = e.message;
    }
  }

  resetZoom() {
    this.zoomSeq++;
    if (!this.zoom) { if (this.u) this.u.setData(this.u.data, true); return; }
    this.zoom = null;
    this.redraw(false);
  }

  updateMeta() {
    const source = this.zoom ? this.zoom.data : this.full;
    let shown = 0, total = 0, exact = true;
    for (const s of source.values()) { shown += s.steps.length; total += s.total; exact = exact && s.exact; }
    this.el.dataset.points = String(shown);
    this.el.dataset.total = String(total);
    this.el.dataset.exact = String(exact);
    this.el.dataset.zoomed = String(!!this.zoom);
    const first = this.full.get(this.runs[0].id);
    if (first && first.values.length) this.el.dataset.lastValue = String(first.values[first.values.length - 1]);
    this.resetBtn.hidden = !this.zoom;
    this.badge.textContent = exact ? (this.zoom ? "exact" : "") : `${shown.toLocaleString()} of ${total.toLocaleString()} pts`;
    this.badge.title = exact ? "every logged point is drawn"
      : "downsampled on the server with a min/max envelope (spikes kept); drag to zoom in for the exact points";
    this.badge.hidden = !this.badge.textContent;
  }

  /** Values under the cursor (or the last values when the cursor is away). */
  updateLegend(idx) {
    const mode = this.settings.get("xAxis");
    const hovering = idx !== null && idx !== undefined && this.u;
    const x = hovering ? this.u.data[0][idx] : null;
    const rows = [];
    for (const p of this.prepared) {
      let i = hovering ? nearest(p.xs, x) : p.xs.length - 1;
      if (i < 0) continue;
      const ys = p.smooth || p.ys;
      rows.push(h("span", {class: "legend-item", dataset: {run: p.run.id}},
        h("span", {class: "swatch", style: {background: p.run.color}}),
        this.prepared.length > 1 ? h("span", {class: "legend-name"}, p.run.name) : null,
        h("span", {class: "legend-value"}, ys[i] === null && p.notes ? (p.notes[i] || "—") : fmtNumber(ys[i])),
        h("span", {class: "legend-x"}, fmtX(mode, p.xs[i]), mode !== "step" ? ` · step ${p.steps[i]}` : "")));
    }
    this.legend.replaceChildren(h("span", {class: "legend-lead"}, hovering ? "" : "last"), ...rows);
  }

  destroy() {
    visibility.unobserve(this.el);
    registry.delete(this.registryKey());
    if (this.resizer) this.resizer.disconnect();
    if (this.u) this.u.destroy();
    this.u = null;
  }
}

/** Group keys by the prefix before the first "/" ("train/loss" -> "train"); "" for the rest. */
export function groupKeys(keys) {
  const groups = new Map();
  for (const key of keys) {
    const cut = key.indexOf("/");
    const group = cut > 0 ? key.slice(0, cut) : "";
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(key);
  }
  // named groups first, in a familiar order, then the ungrouped keys
  const rank = (g) => ({train: 0, val: 1, valid: 1, validation: 1, eval: 2, test: 3}[g] ?? 4);
  return [...groups.entries()].sort((a, b) => (a[0] === "") - (b[0] === "") || rank(a[0]) - rank(b[0])
    || a[0].localeCompare(b[0]));
}
