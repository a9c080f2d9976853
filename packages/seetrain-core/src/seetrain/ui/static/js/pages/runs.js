// The runs of a project as a table: sortable, filterable, with chosen metric and config columns.

import {h, statusPill, chips, fmtDate, fmtDuration, fmtNumber, fmtValue, flatten, emptyState} from "../dom.js";
import {api} from "../api.js";
import {setCrumbs, poll, liveBadge, LIVE_EVERY_MS} from "./common.js";

const HIDDEN_CONFIG = /^seetrain\./;   // bookkeeping the adapters write (frameworks are a column already)

function storageKey(project) { return `seetrain.columns.${project}`; }

/** Default columns: metrics people look at first, and the config keys that differ between runs. */
function defaultColumns(data) {
  const prefer = (k) => (/^(val|valid|validation|eval|test)\//.test(k) ? 0 : /^train\//.test(k) ? 1 : 2);
  const metrics = [...data.metric_keys].sort((a, b) => prefer(a) - prefer(b) || a.localeCompare(b)).slice(0, 4);
  const values = new Map();
  for (const run of data.runs) {
    for (const [k, v] of Object.entries(flatten(run.config))) {
      if (HIDDEN_CONFIG.test(k)) continue;
      if (!values.has(k)) values.set(k, new Set());
      values.get(k).add(JSON.stringify(v));
    }
  }
  let config = [...values.keys()].filter((k) => values.get(k).size > 1);
  if (config.length < 3) config = config.concat([...values.keys()].filter((k) => !config.includes(k)));
  return {metrics, config: config.slice(0, 6)};
}

export async function runsPage(view, project) {
  setCrumbs([{label: project}]);
  let data = await api.projectRuns(project);
  let columns;
  try { columns = JSON.parse(localStorage.getItem(storageKey(project))); } catch (e) { columns = null; }
  if (!columns || !Array.isArray(columns.metrics)) columns = defaultColumns(data);
  const selected = new Set();
  let sort = {col: "created_at", dir: -1};
  let filter = "";

  const table = h("table", {class: "runs-table"});
  const countEl = h("span", {class: "muted count"});
  const compareBtn = h("button", {type: "button", class: "btn primary", id: "compare-btn", disabled: true,
    onclick: () => { location.hash = `#/compare?runs=${[...selected].join(",")}`; }}, "Compare");
  const filterInput = h("input", {type: "search", class: "search", id: "runs-filter",
    placeholder: "Filter: name, tag, status, lr=0.01 …", "aria-label": "Filter runs"});
  filterInput.addEventListener("input", () => { filter = filterInput.value.trim().toLowerCase(); draw(); });
  const picker = h("div", {class: "column-picker", hidden: true});
  const pickerBtn = h("button", {type: "button", class: "btn", id: "columns-btn",
    onclick: () => { picker.hidden = !picker.hidden; if (!picker.hidden) drawPicker(); }}, "Columns");
  const live = liveBadge();

  const page = h("div", {class: "page"},
    h("div", {class: "page-head"},
      h("h1", {}, project), countEl, live, h("span", {class: "spacer"})),
    h("div", {class: "toolbar"}, filterInput, h("span", {class: "spacer"}),
      h("div", {class: "picker-wrap"}, pickerBtn, picker), compareBtn),
    h("div", {class: "card table-card"}, table));

  const configOf = new Map();
  const refreshConfig = () => { configOf.clear(); for (const r of data.runs) configOf.set(r.id, flatten(r.config)); };
  refreshConfig();

  function cellValue(run, col) {
    if (col.startsWith("m:")) return run.summary[col.slice(2)];
    if (col.startsWith("c:")) return configOf.get(run.id)[col.slice(2)];
    if (col === "duration") return run.duration;
    if (col === "frameworks" || col === "tags") return (run[col] || []).join(", ");
    return run[col];
  }

  function matches(run) {
    if (!filter) return true;
    const cfg = configOf.get(run.id);
    const text = [run.name, run.id, run.status, run.group, ...(run.tags || []), ...(run.frameworks || []),
      ...Object.entries(cfg).map(([k, v]) => `${k}=${fmtValue(v)}`)].join(" ").toLowerCase();
    return filter.split(/\s+/).every((term) => text.includes(term));
  }

  const blank = (v) => v === null || v === undefined || v === "";

  function compareValues(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }

  function header(label, col, cls = "") {
    const active = sort.col === col;
    return h("th", {class: `sortable ${cls} ${active ? "sorted" : ""}`, dataset: {col}, title: "Sort",
      onclick: () => { sort = {col, dir: active ? -sort.dir : (col === "created_at" ? -1 : 1)}; draw(); }},
      label, h("span", {class: "arrow"}, active ? (sort.dir > 0 ? "▲" : "▼") : ""));
  }

  function draw() {
    const runs = data.runs.filter(matches);
    runs.sort((a, b) => {
      const va = cellValue(a, sort.col), vb = cellValue(b, sort.col);
      if (blank(va) || blank(vb)) return blank(va) - blank(vb);  // blanks last, whatever the direction
      return compareValues(va, vb) * sort.dir;
    });
    const allBox = h("input", {type: "checkbox", "aria-label": "Select all shown",
      checked: runs.length > 0 && runs.every((r) => selected.has(r.id)),
      onchange: (e) => { for (const r of runs) e.target.checked ? selected.add(r.id) : selected.delete(r.id); draw(); }});
    const head = h("tr", {},
      h("th", {class: "select"}, allBox),
      header("Name", "name"), header("Status", "status"), header("Started", "created_at"),
      header("Duration", "duration", "num"), header("Frameworks", "frameworks"), header("Tags", "tags"),
      columns.metrics.map((k) => header(k, `m:${k}`, "num metric")),
      columns.config.map((k) => header(k, `c:${k}`, "config")));
    const body = runs.map((run) => {
      const cfg = configOf.get(run.id);
      const box = h("input", {type: "checkbox", "aria-label": `Select ${run.name}`, checked: selected.has(run.id),
        onchange: (e) => { e.target.checked ? selected.add(run.id) : selected.delete(run.id); updateSelection(); }});
      return h("tr", {dataset: {run: run.id, status: run.status}, class: selected.has(run.id) ? "selected" : ""},
        h("td", {class: "select"}, box),
        h("td", {class: "name"}, h("a", {href: `#/r/${run.id}`, class: "run-link"}, run.name),
          run.name !== run.id ? h("div", {class: "sub mono"}, run.id) : null),
        h("td", {}, statusPill(run.status)),
        h("td", {class: "nowrap"}, fmtDate(run.created_at)),
        h("td", {class: "num"}, fmtDuration(run.duration)),
        h("td", {}, chips(run.frameworks, "chip fw")),
        h("td", {}, chips(run.tags)),
        columns.metrics.map((k) => h("td", {class: "num mono", dataset: {metric: k}}, fmtNumber(run.summary[k]))),
        columns.config.map((k) => h("td", {class: "mono config-cell"}, fmtValue(cfg[k]))));
    });
    const colCount = 7 + columns.metrics.length + columns.config.length;
    table.replaceChildren(h("thead", {}, head), h("tbody", {},
      body.length ? body : h("tr", {}, h("td", {colspan: colCount, class: "muted empty-row"}, "No run matches the filter."))));
    countEl.textContent = runs.length === data.runs.length ? `${data.runs.length} runs` : `${runs.length} of ${data.runs.length} runs`;
    updateSelection();
    live.hidden = !data.runs.some((r) => r.status === "running");
  }

  function updateSelection() {
    compareBtn.disabled = selected.size < 2;
    compareBtn.textContent = selected.size ? `Compare ${selected.size}` : "Compare";
    table.querySelectorAll("tbody tr[data-run]").forEach((tr) => tr.classList.toggle("selected", selected.has(tr.dataset.run)));
  }

  function drawPicker() {
    const configKeys = [...new Set(data.runs.flatMap((r) => Object.keys(configOf.get(r.id))))].sort();
    const group = (title, keys, list) => h("div", {class: "picker-group"},
      h("div", {class: "picker-title"}, title),
      keys.length ? keys.map((k) => h("label", {class: "picker-item"},
        h("input", {type: "checkbox", checked: list.includes(k), value: k, onchange: (e) => {
          if (e.target.checked) list.push(k); else list.splice(list.indexOf(k), 1);
          localStorage.setItem(storageKey(project), JSON.stringify(columns));
          draw();
        }}), h("span", {class: "mono"}, k))) : h("div", {class: "muted"}, "none"));
    picker.replaceChildren(group("Metrics (last value)", data.metric_keys, columns.metrics),
      group("Config", configKeys, columns.config));
  }

  if (!data.runs.length) page.append(emptyState("No runs", ""));
  draw();
  view.replaceChildren(page);
  const closePicker = (e) => { if (!picker.hidden && !e.target.closest(".picker-wrap")) picker.hidden = true; };
  document.addEventListener("click", closePicker);

  // live: re-read the table while a run of the project is running (or a new one may start)
  let seen = JSON.stringify(data);
  const poller = poll(async () => {
    const fresh = await api.projectRuns(project);
    const text = JSON.stringify(fresh);
    if (text === seen) return;
    seen = text;
    data = fresh;
    refreshConfig();
    draw();
  }, LIVE_EVERY_MS * 1.5);
  return {destroy: () => { poller.stop(); document.removeEventListener("click", closePicker); }};
}
