// Chart settings shared by every chart of a page, kept across visits in localStorage.

import {h} from "./dom.js";

const STORAGE_KEY = "seetrain.chartSettings";
const DEFAULTS = {xAxis: "step", log: false, smoothing: 0, filter: ""};

export class ChartSettings {
  constructor() {
    let saved = {};
    try { saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}"); } catch (e) { saved = {}; }
    this.values = {...DEFAULTS, ...saved, filter: ""};
    this.listeners = new Set();
  }

  get(name) { return this.values[name]; }

  set(name, value) {
    if (this.values[name] === value) return;
    this.values[name] = value;
    const {filter, ...persisted} = this.values;
    try { localStorage.setItem(STORAGE_KEY, JSON.stringify(persisted)); } catch (e) { /* private mode */ }
    for (const fn of this.listeners) fn(name, value);
  }

  onChange(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  /** The toolbar: x axis, log scale, smoothing, and a filter over chart names. */
  toolbar({extra = null} = {}) {
    const seg = h("div", {class: "segmented", role: "group", "aria-label": "X axis"});
    for (const [value, label] of [["step", "Step"], ["wall", "Wall time"], ["relative", "Relative time"]]) {
      const b = h("button", {type: "button", "data-x": value, class: this.values.xAxis === value ? "on" : ""}, label);
      b.addEventListener("click", () => {
        seg.querySelectorAll("button").forEach((x) => x.classList.toggle("on", x === b));
        this.set("xAxis", value);
      });
      seg.append(b);
    }
    const log = h("input", {type: "checkbox", id: "opt-log", checked: this.values.log});
    log.addEventListener("change", () => this.set("log", log.checked));
    const smoothVal = h("output", {class: "smooth-val"}, this.values.smoothing.toFixed(2));
    const smooth = h("input", {type: "range", id: "opt-smoothing", min: 0, max: 0.99, step: 0.01,
      value: this.values.smoothing, "aria-label": "Smoothing"});
    smooth.addEventListener("input", () => {
      smoothVal.textContent = Number(smooth.value).toFixed(2);
      this.set("smoothing", Number(smooth.value));
    });
    const filter = h("input", {type: "search", id: "chart-filter", class: "search", placeholder: "Filter charts…",
      "aria-label": "Filter charts"});
    filter.addEventListener("input", () => this.set("filter", filter.value.trim().toLowerCase()));
    return h("div", {class: "toolbar"},
      h("label", {class: "tool"}, h("span", {class: "tool-label"}, "X axis"), seg),
      h("label", {class: "tool toggle", for: "opt-log"}, log, h("span", {}, "Log scale")),
      h("label", {class: "tool"}, h("span", {class: "tool-label"}, "Smoothing"), smooth, smoothVal),
      h("span", {class: "spacer"}),
      extra,
      filter,
    );
  }
}
