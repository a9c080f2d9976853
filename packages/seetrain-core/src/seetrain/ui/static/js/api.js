// The JSON API (documented at /api/openapi.json). Errors come back as {"error": message}.

export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

export async function get(path, params = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) qs.append(k, item);
  }
  const url = path + (qs.toString() ? `?${qs}` : "");
  let resp;
  try {
    resp = await fetch(url, {headers: {Accept: "application/json"}});
  } catch (e) {
    throw new ApiError(`the dashboard server does not answer (${e.message}); is seetrain ui still running?`, 0);
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new ApiError((body && body.error) || `${resp.status} ${resp.statusText}`, resp.status);
  return body;
}

export const api = {
  store: () => get("/api/store"),
  projects: () => get("/api/projects"),
  projectRuns: (project) => get(`/api/projects/${encodeURIComponent(project)}/runs`),
  run: (id) => get(`/api/runs/${encodeURIComponent(id)}`),
  scalars: (id, keys, opts = {}) => get(`/api/runs/${encodeURIComponent(id)}/scalars`, {key: keys, ...opts}),
  media: (id, key, step) => get(`/api/runs/${encodeURIComponent(id)}/media`, {key, step}),
};
