// Small DOM and formatting helpers shared by the pages.

/** Create an element: h("a", {href: "#/", class: "x", onclick: fn}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export const STATUS_LABELS = {
  running: "Running", finished: "Finished", crashed: "Crashed", failed: "Failed", interrupted: "Interrupted",
};

export function statusPill(status) {
  return h("span", {class: `status status-${status}`, title: status},
    h("span", {class: "dot"}), STATUS_LABELS[status] || status);
}

export function chips(items, cls = "chip") {
  return h("span", {class: "chips"}, (items || []).map((t) => h("span", {class: cls}, t)));
}

const pad = (n) => String(n).padStart(2, "0");

/** 2026-03-01 14:05 (local time) */
export function fmtDate(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "3 min ago" */
export function fmtAgo(seconds) {
  if (!seconds) return "—";
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** 1h 02m, 3m 05s, 12.3s */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  const s = Math.abs(seconds);
  const sign = seconds < 0 ? "-" : "";
  if (s < 60) return `${sign}${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${sign}${m}m ${pad(Math.floor(s % 60))}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 24) return `${sign}${hrs}h ${pad(m % 60)}m`;
  return `${sign}${Math.floor(hrs / 24)}d ${pad(hrs % 24)}h`;
}

/** Numbers as a person reads them: 4 significant digits, exponent when tiny or huge. */
export function fmtNumber(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v !== "number") return String(v);
  if (!isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, "e");
  return String(parseFloat(v.toPrecision(4)));
}

/** Any config value as short text. */
export function fmtValue(v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return fmtNumber(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** {a: {b: 1}} -> {"a.b": 1} */
export function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    const name = prefix + k;
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) flatten(v, name + ".", out);
    else out[name] = v;
  }
  return out;
}

/** Distinct colours for runs, in the order they are picked. */
export const PALETTE = ["#4f46e5", "#e11d48", "#059669", "#d97706", "#0891b2", "#9333ea",
  "#65a30d", "#db2777", "#2563eb", "#ea580c", "#0d9488", "#7c3aed"];

export function emptyState(title, text) {
  return h("div", {class: "empty"}, h("div", {class: "empty-title"}, title), text ? h("p", {}, text) : null);
}

export function errorBox(err) {
  return h("div", {class: "error-box", role: "alert"}, h("strong", {}, "Error: "), err.message || String(err));
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}
