// The single-page app: a hash router over four pages.
//   #/                      projects
//   #/p/<project>           the runs of a project
//   #/r/<run id>            one run
//   #/compare?runs=a,b,...  several runs overlaid

import {h, errorBox} from "./dom.js";
import {api, apiKey, setApiKey} from "./api.js";
import {projectsPage} from "./pages/projects.js";
import {runsPage} from "./pages/runs.js";
import {runPage} from "./pages/run.js";
import {comparePage} from "./pages/compare.js";

const view = document.getElementById("view");
let current = null;
let generation = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return {parts, query: new URLSearchParams(query)};
}

async function route() {
  const gen = ++generation;
  if (current && current.destroy) current.destroy();
  current = null;
  window.scrollTo(0, 0);
  const {parts, query} = parseHash();
  const page = {
    "": () => projectsPage(view),
    p: () => runsPage(view, parts.slice(1).join("/")),
    r: () => runPage(view, parts[1]),
    compare: () => comparePage(view, (query.get("runs") || "").split(",").filter(Boolean)),
  }[parts[0] || ""];
  view.replaceChildren(h("div", {class: "loading"}, "Loading…"));
  document.body.dataset.page = parts[0] || "projects";
  try {
    if (!page) throw new Error(`no page ${location.hash}; go back to the projects`);
    const result = await page();
    if (gen !== generation) { if (result && result.destroy) result.destroy(); return; }
    current = result;
  } catch (e) {
    if (gen !== generation) return;
    if (e.status === 401) { showLogin(e.message); return; }
    view.replaceChildren(errorBox(e), h("p", {}, h("a", {href: "#/"}, "← All projects")));
  }
}

// The team server with --auth: a 401 from the API shows this form; the key is kept in
// localStorage and sent as a Bearer token (api.js).
function showLogin(message) {
  generation++;  // a page still loading must not replace the form
  if (current && current.destroy) current.destroy();
  current = null;
  document.body.dataset.page = "login";
  const existing = view.querySelector("form.login");
  const problem = apiKey() ? message : "This server needs an API key.";
  if (existing) { existing.querySelector(".login-problem").textContent = problem; return; }
  const input = h("input", {type: "password", name: "key", id: "login-key", autocomplete: "current-password",
    placeholder: "stk_…", required: true, spellcheck: "false", "aria-label": "API key"});
  const form = h("form", {class: "login card"},
    h("h1", {}, "Sign in"),
    h("p", {class: "login-problem muted"}, problem),
    h("label", {for: "login-key"}, "API key"),
    input,
    h("button", {type: "submit", class: "btn primary"}, "Sign in"),
    h("p", {class: "muted small"}, "Ask an admin for a key (seetrain server key add). It is kept in this browser only."));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    setApiKey(input.value.trim());
    start();
  });
  view.replaceChildren(form);
  input.focus();
}

function signOutButton() {
  const bar = document.querySelector(".topbar");
  let btn = document.getElementById("sign-out");
  if (!apiKey()) { if (btn) btn.remove(); return; }
  if (btn) return;
  btn = h("button", {type: "button", id: "sign-out", class: "btn small", title: "Forget the API key in this browser",
    onclick: () => { setApiKey(null); start(); }}, "Sign out");
  bar.append(btn);
}

function start() {
  signOutButton();
  api.store().then((s) => {
    const el = document.getElementById("store-path");
    el.textContent = s.directory;
    el.title = `${s.auth ? "served by" : "store directory"} · SeeTrain ${s.version}`;
    route();
  }).catch((e) => { if (e.status !== 401) route(); });
}

window.addEventListener("hashchange", route);
window.addEventListener("seetrain:login", (ev) => showLogin(ev.detail));
start();
