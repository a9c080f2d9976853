// Several runs overlaid on every chart they share, and the differences of their configs.

import {h, statusPill, fmtValue, fmtNumber, flatten, emptyState, PALETTE} from "../dom.js";
import {api} from "../api.js";
import {MetricChart} from "../charts.js";
import {ChartSettings} from "../settings.js";
import {ChartGroups, wireSettings, fetchSeries, loader} from "./run.js";
import {setCrumbs, poll, LIVE_EVERY_MS} from "./common.js";

function diffTable(runs, rowsOf, {numeric = false, onlyDiff = true, section = ""} = {}) {
  const flat = runs.map(rowsOf);
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
  const rows = [];
  for (const key of keys) {
    const values = flat.map((f) => f[key]);
    const texts = values.map((v) => (numeric ? fmtNumber(v) : fmtValue(v)));
    const differs = new Set(values.map((v) => JSON.stringify(v ?? null))).size > 1;
    if (onlyDiff && !differs) continue;
    rows.push(h("tr", {class: differs ? "differs" : "", dataset: {key, section}},
      h("th", {class: "mono"}, key), texts.map((t) => h("td", {class: "mono"}, t))));
  }
  return {rows, total: keys.length};
}

export async function comparePage(view, ids) {
  if (!ids.length) throw new Error("no runs to compare: select runs in a project's table, then Compare");
  let runs = await Promise.all(ids.map((id) => api.run(id)));
  const projects = [...new Set(runs.map((r) => r.project))];
  setCrumbs([...projects.map((p) => ({label: p, href: `#/p/${encodeURIComponent(p)}`})), {label: `compare ${runs.length} runs`}]);
  const infos = runs.map((r, i) => ({id: r.id, name: r.name, color: PALETTE[i % PALETTE.length], created_at: r.created_at}));
  const settings = new ChartSettings();
  const groups = new ChartGroups(settings, (key) => {
    const present = infos.filter((info, i) => runs[i].keys.some((k) => k.key === key && k.kind === "scalar"));
    return new MetricChart({key, runs: present, settings, loader, syncKey: `compare:${ids.join(",")}`});
  });

  // the charts: every scalar key that at least two of the runs logged (all keys of a single run)
  const sharedKeys = () => {
    const count = new Map();
    for (const r of runs) for (const k of r.keys) if (k.kind === "scalar") count.set(k.key, (count.get(k.key) || 0) + 1);
    const need = runs.length > 1 ? 2 : 1;
    return [...count.entries()].filter(([, n]) => n >= need).map(([k]) => k).sort();
  };

  const legend = h("div", {class: "run-legend"}, infos.map((info, i) =>
    h("a", {class: "run-chip", href: `#/r/${info.id}`, dataset: {run: info.id}},
      h("span", {class: "swatch", style: {background: info.color}}), info.name, statusPill(runs[i].status))));

  let onlyDiff = true;
  const diffBox = h("div", {class: "diff-body"});
  const diffToggle = h("input", {type: "checkbox", id: "only-diff", checked: true,
    onchange: (e) => { onlyDiff = e.target.checked; drawDiff(); }});
  function drawDiff() {
    const head = h("tr", {}, h("th", {}, "key"), infos.map((info) =>
      h("th", {}, h("span", {class: "swatch", style: {background: info.color}}), info.name)));
    const cfg = diffTable(runs, (r) => flatten(r.config), {onlyDiff, section: "config"});
    const sum = diffTable(runs, (r) => r.summary, {numeric: true, onlyDiff, section: "summary"});
    const span = infos.length + 1;
    const section = (title, part) => [h("tr", {class: "section"}, h("td", {colspan: span}, title,
      h("span", {class: "muted"}, ` · ${part.rows.length} of ${part.total} keys`))),
      part.rows.length ? part.rows : h("tr", {}, h("td", {colspan: span, class: "muted"}, onlyDiff ? "no differences" : "none"))];
    diffBox.replaceChildren(h("table", {class: "diff-table"}, h("thead", {}, head),
      h("tbody", {}, section("Config", cfg), section("Summary", sum))));
  }
  drawDiff();

  const page = h("div", {class: "page compare-page"},
    h("div", {class: "page-head"}, h("h1", {}, `Compare ${runs.length} runs`)),
    legend,
    h("div", {class: "card diff-card"},
      h("div", {class: "card-head"}, h("h3", {}, "Config diff"), h("span", {class: "spacer"}),
        h("label", {class: "toggle", for: "only-diff"}, diffToggle, h("span", {}, "Only differences"))),
      diffBox),
    settings.toolbar(),
    groups.el);
  view.replaceChildren(page);
  const unwire = wireSettings(settings, groups);

  const load = async (charts) => {
    if (!charts.length) return;
    const maxPoints = charts[0].pointsForWidth();
    // all runs at once, then each chart drawn once with all its lines
    const perRun = await Promise.all(infos.map((info) => {
      const keys = charts.filter((c) => c.runs.includes(info)).map((c) => c.key);
      return keys.length ? fetchSeries(info.id, keys, {max_points: maxPoints}) : {};
    }));
    for (const c of charts) {
      c.maxPoints = maxPoints;
      infos.forEach((info, i) => { if (perRun[i][c.key]) c.setSeries(info.id, perRun[i][c.key], false); });
      c.redraw();
    }
  };
  const first = groups.add(sharedKeys());
  if (!first.length) groups.el.append(emptyState("No shared metrics", "these runs logged no scalar key in common"));
  await load(first);

  // live: append new points of the runs still running
  const poller = poll(async () => {
    const running = runs.map((r, i) => [r, i]).filter(([r]) => r.status === "running");
    if (!running.length) return false;
    for (const [r, i] of running) {
      runs[i] = await api.run(r.id);
      const info = infos[i];
      const charts = [...groups.charts.values()].filter((c) => c.runs.includes(info));
      if (!charts.length) continue;
      const since = Math.min(...charts.map((c) => c.lastStep(info.id) ?? -1));
      const tails = await fetchSeries(info.id, charts.map((c) => c.key), {since_step: since, max_points: charts[0].maxPoints});
      for (const c of charts) if (tails[c.key]) c.appendSeries(info.id, tails[c.key]);
    }
    legend.querySelectorAll(".run-chip").forEach((chip, i) => chip.querySelector(".status").replaceWith(statusPill(runs[i].status)));
    drawDiff();
    return true;
  }, LIVE_EVERY_MS);

  return {destroy() { poller.stop(); unwire(); groups.destroy(); }};
}
