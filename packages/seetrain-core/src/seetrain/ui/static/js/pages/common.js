// Pieces shared by the pages: breadcrumbs and polling.

import {h} from "../dom.js";

export function setCrumbs(items) {
  const nav = document.getElementById("crumbs");
  const parts = [];
  for (const item of items) {
    parts.push(h("span", {class: "sep"}, "/"));
    parts.push(item.href ? h("a", {href: item.href}, item.label) : h("span", {class: "here"}, item.label));
  }
  nav.replaceChildren(...parts);
  document.title = items.length ? `${items[items.length - 1].label} · SeeTrain` : "SeeTrain";
}

/** Calls ``fn`` every ``ms`` (never two at once) until ``stop()``; ``fn`` returning false stops it. */
export function poll(fn, ms) {
  let stopped = false, timer = null;
  const tick = async () => {
    if (stopped) return;
    let again = true;
    try { again = (await fn()) !== false; } catch (e) { /* keep trying: the server may come back */ }
    if (!stopped && again) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return {stop() { stopped = true; clearTimeout(timer); }};
}

export const LIVE_EVERY_MS = 2000;

export function liveBadge() {
  return h("span", {class: "live", title: `updates every ${LIVE_EVERY_MS / 1000} s`}, h("span", {class: "pulse"}), "Live");
}
