// One run: header, a chart per scalar key grouped by prefix, media panels, config and summary.

import {h, statusPill, chips, fmtDate, fmtDuration, fmtNumber, fmtValue, flatten, emptyState, debounce, PALETTE} from "../dom.js";
import {api} from "../api.js";
import {MetricChart, groupKeys} from "../charts.js";
import {MediaPanel} from "../media.js";
import {ChartSettings} from "../settings.js";
import {setCrumbs, poll, liveBadge, LIVE_EVERY_MS} from "./common.js";

const FIRST_BATCH = 12;   // keys of the first request: about a screenful of charts
const BATCH = 60;

/** Fetch the series of many keys in a few requests; ``onBatch(series)`` as each one lands, the
 * first screenful first so it can be drawn while the rest are on their way. */
export async function fetchSeries(runId, keys, opts, onBatch = null) {
  const out = {};
  const take = (data) => { Object.assign(out, data.series); if (onBatch) onBatch(data.series); };
  take(await api.scalars(runId, keys.slice(0, FIRST_BATCH), opts));
  const rest = [];
  for (let i = FIRST_BATCH; i < keys.length; i += BATCH) {
    rest.push(api.scalars(runId, keys.slice(i, i + BATCH), opts).then(take));
  }
  await Promise.all(rest);
  return out;
}

export const loader = (runId, key, opts) => api.scalars(runId, [key], opts).then((d) => d.series[key]);

export function kvTable(obj, {empty = "nothing yet", numeric = false} = {}) {
  const entries = Object.entries(obj);
  if (!entries.length) return h("div", {class: "muted small"}, empty);
  return h("table", {class: "kv"}, h("tbody", {}, entries.map(([k, v]) =>
    h("tr", {}, h("th", {class: "mono", title: k}, k), h("td", {class: "mono"}, numeric ? fmtNumber(v) : fmtValue(v))))));
}

/** Sections of charts grouped by key prefix, with the filter applied to them. */
export class ChartGroups {
  constructor(settings, makeChart) {
    this.settings = settings;
    this.makeChart = makeChart;
    this.charts = new Map();
    this.sections = new Map();
    this.el = h("div", {class: "chart-groups"});
  }

  add(keys) {
    const fresh = [];
    for (const [group, groupKeysList] of groupKeys(keys)) {
      let sec = this.sections.get(group);
      if (!sec) {
        const grid = h("div", {class: "chart-grid"});
        const count = h("span", {class: "muted count"});
        const toggle = h("button", {type: "button", class: "group-head", "aria-expanded": "true"},
          h("span", {class: "caret"}, "▾"), h("span", {class: "group-name"}, group ? `${group}/` : "other"), count);
        const section = h("section", {class: "chart-group", dataset: {group}}, toggle, grid);
        toggle.addEventListener("click", () => {
          const open = section.classList.toggle("collapsed");
          toggle.setAttribute("aria-expanded", String(!open));
        });
        sec = {section, grid, count, keys: []};
        this.sections.set(group, sec);
        this.el.append(section);
      }
      for (const key of groupKeysList) {
        if (this.charts.has(key)) continue;
        const chart = this.makeChart(key);
        this.charts.set(key, chart);
        sec.keys.push(key);
        sec.grid.append(chart.el);
        fresh.push(chart);
      }
      sec.count.textContent = String(sec.keys.length);
    }
    this.applyFilter();
    return fresh;
  }

  applyFilter() {
    const f = this.settings.get("filter");
    for (const sec of this.sections.values()) {
      let shown = 0;
      for (const key of sec.keys) {
        const visible = !f || key.toLowerCase().includes(f);
        this.charts.get(key).el.hidden = !visible;
        shown += visible;
      }
      sec.section.hidden = shown === 0;
    }
  }

  redrawAll() { for (const c of this.charts.values()) if (c.full.size) c.redraw(true); }

  destroy() { for (const c of this.charts.values()) c.destroy(); }
}

/** Re-draw charts when a setting changes (smoothing is debounced: the slider fires often). */
export function wireSettings(settings, groups) {
  const redrawSoon = debounce(() => groups.redrawAll(), 80);
  return settings.onChange((name) => {
    if (name === "filter") groups.applyFilter();
    else if (name === "smoothing") redrawSoon();
    else groups.redrawAll();
  });
}

function runHeader(run) {
  const meta = h("div", {class: "run-meta"},
    h("span", {class: "mono", title: "run id"}, run.id),
    h("span", {}, "started ", fmtDate(run.created_at)),
    h("span", {class: "duration"}, "duration ", fmtDuration(run.duration)),
    run.last_step !== null ? h("span", {}, "last step ", String(run.last_step)) : null,
    run.host ? h("span", {class: "muted"}, run.host) : null);
  return h("div", {class: "run-header card"},
    h("div", {class: "run-title"}, h("h1", {}, run.name), statusPill(run.status),
      run.status === "running" ? liveBadge() : null),
    meta,
    h("div", {class: "run-tags"},
      run.frameworks.length ? chips(run.frameworks, "chip fw") : null,
      run.tags.length ? chips(run.tags) : null,
      run.group ? h("span", {class: "chip group"}, `group: ${run.group}`) : null),
    run.description ? h("p", {class: "description"}, run.description) : null,
    run.error ? h("pre", {class: "run-error"}, run.error) : null);
}

export async function runPage(view, runId) {
  let run = await api.run(runId);
  setCrumbs([{label: run.project, href: `#/p/${encodeURIComponent(run.project)}`}, {label: run.name}]);
  const settings = new ChartSettings();
  const runInfo = {id: run.id, name: run.name, color: PALETTE[0], created_at: run.created_at};
  const groups = new ChartGroups(settings, (key) =>
    new MetricChart({key, runs: [runInfo], settings, loader, syncKey: `run:${run.id}`}));

  const scalarKeys = () => run.keys.filter((k) => k.kind === "scalar").map((k) => k.key);
  const mediaKeys = () => run.keys.filter((k) => k.kind !== "scalar");

  let header = runHeader(run);
  const summaryBox = h("div", {class: "side-body"});
  const configBox = h("div", {class: "side-body"});
  const filesBox = h("div", {class: "side-body"});
  const drawSide = () => {
    summaryBox.replaceChildren(kvTable(run.summary, {numeric: true}));
    configBox.replaceChildren(kvTable(flatten(run.config), {empty: "no config"}));
    filesBox.replaceChildren(run.files.length
      ? h("ul", {class: "files"}, run.files.map((f) => h("li", {}, h("span", {class: "chip"}, f.kind), " ",
        h("span", {class: "mono"}, f.path))))
      : h("div", {class: "muted small"}, "no files"));
  };
  drawSide();

  const mediaGrid = h("div", {class: "media-grid"});
  const mediaSection = h("section", {class: "media-section"}, h("h2", {}, "Media"), mediaGrid);
  const panels = new Map();
  const addMedia = () => {
    for (const {key, kind} of mediaKeys()) {
      if (panels.has(key)) continue;
      const panel = new MediaPanel({run, key, kind});
      panels.set(key, panel);
      mediaGrid.append(panel.el);
      panel.load().catch((e) => panel.body.replaceChildren(h("div", {class: "muted"}, e.message)));
    }
    mediaSection.hidden = panels.size === 0;
  };

  const main = h("div", {class: "run-main"}, settings.toolbar(), groups.el, mediaSection);
  const side = h("aside", {class: "run-side"},
    h("div", {class: "card side-card"}, h("h3", {}, "Summary"), summaryBox),
    h("div", {class: "card side-card"}, h("h3", {}, "Config"), configBox),
    h("div", {class: "card side-card"}, h("h3", {}, "Files"), filesBox));
  const page = h("div", {class: "page run-page"}, header, h("div", {class: "run-layout"}, main, side));
  view.replaceChildren(page);

  const unwire = wireSettings(settings, groups);
  const loadCharts = async (charts) => {
    if (!charts.length) return;
    const maxPoints = charts[0].pointsForWidth();
    const byKey = new Map(charts.map((c) => [c.key, c]));
    await fetchSeries(run.id, charts.map((c) => c.key), {max_points: maxPoints}, (series) => {
      for (const [key, s] of Object.entries(series)) { const c = byKey.get(key); c.maxPoints = maxPoints; c.setSeries(run.id, s); }
      if (!window.__seetrain.firstPaint) window.__seetrain.firstPaint = performance.now();
    });
  };
  const first = groups.add(scalarKeys());
  if (!first.length) groups.el.append(emptyState("No metrics logged", run.status === "running" ? "waiting for the first values…" : ""));
  addMedia();
  window.__seetrain.firstPaint = null;
  await loadCharts(first);

  // live: while the run is running, append the new points of every chart
  let poller = null;
  const tick = async () => {
    const fresh = await api.run(run.id);
    const wasRunning = run.status === "running";
    run = fresh;
    const newHeader = runHeader(run);
    header.replaceWith(newHeader);
    header = newHeader;
    drawSide();
    const added = groups.add(scalarKeys());
    await loadCharts(added);
    const old = [...groups.charts.values()].filter((c) => !added.includes(c));
    if (old.length) {
      const since = Math.min(...old.map((c) => c.lastStep(run.id) ?? -1));
      const tails = await fetchSeries(run.id, old.map((c) => c.key), {since_step: since, max_points: old[0].maxPoints});
      for (const c of old) if (tails[c.key]) c.appendSeries(run.id, tails[c.key]);
    }
    addMedia();
    for (const k of mediaKeys()) panels.get(k.key)?.refresh(k.steps);
    return wasRunning && run.status === "running";
  };
  if (run.status === "running") poller = poll(tick, LIVE_EVERY_MS);

  return {
    destroy() {
      if (poller) poller.stop();
      unwire();
      groups.destroy();
      for (const p of panels.values()) p.destroy();
    },
  };
}
