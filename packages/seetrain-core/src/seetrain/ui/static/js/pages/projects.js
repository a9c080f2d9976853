import {h, fmtAgo, emptyState, STATUS_LABELS} from "../dom.js";
import {api} from "../api.js";
import {setCrumbs, poll} from "./common.js";

export async function projectsPage(view) {
  setCrumbs([]);
  const grid = h("div", {class: "project-grid"});
  const page = h("div", {class: "page"},
    h("div", {class: "page-head"}, h("h1", {}, "Projects")),
    grid);

  const draw = (data) => {
    if (!data.projects.length) {
      grid.replaceChildren(emptyState(data.exists ? "No runs yet" : "No store here yet",
        `Runs logged to ${data.directory} show up here as they start. Try: python -m seetrain.demo --dir ${data.directory}`));
      return;
    }
    grid.replaceChildren(...data.projects.map((p) =>
      h("a", {class: "project-card card", href: `#/p/${encodeURIComponent(p.name)}`, dataset: {project: p.name}},
        h("div", {class: "project-name"}, p.name),
        h("div", {class: "project-statuses"}, Object.entries(p.statuses || {}).map(([status, n]) =>
          h("span", {class: `status status-${status}`, title: `${n} ${status}`}, h("span", {class: "dot"}),
            `${n} ${(STATUS_LABELS[status] || status).toLowerCase()}`))),
        h("div", {class: "project-meta"},
          h("span", {class: "count"}, `${p.runs} run${p.runs === 1 ? "" : "s"}`),
          h("span", {class: "muted"}, `last run ${fmtAgo(p.last_run_at)}`)))));
  };
  draw(await api.projects());
  view.replaceChildren(page);
  const poller = poll(async () => draw(await api.projects()), 5000);
  return {destroy: () => poller.stop()};
}
