// The single-page app: a hash router over four pages.
//   #/                      projects
//   #/p/<project>           the runs of a project
//   #/r/<run id>            one run
//   #/compare?runs=a,b,...  several runs overlaid

import {h, errorBox} from "./dom.js";
import {api} from "./api.js";
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
    view.replaceChildren(errorBox(e), h("p", {}, h("a", {href: "#/"}, "← All projects")));
  }
}

window.addEventListener("hashchange", route);
api.store().then((s) => {
  const el = document.getElementById("store-path");
  el.textContent = s.directory;
  el.title = `store directory · SeeTrain ${s.version}`;
}).catch(() => {});
route();
