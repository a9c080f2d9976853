// The JSON API (documented at /api/openapi.json). Errors come back as {"error": message}.

export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

// The team server's API key (seetrain server --auth): kept in localStorage, sent as
// "Authorization: Bearer <key>" on every request. A 401 fires "seetrain:login" on window
// (main.js shows the login form). The local dashboard never asks for one.
const KEY_ITEM = "seetrain.apiKey";

export function apiKey() {
  try { return localStorage.getItem(KEY_ITEM) || null; } catch (e) { return null; }
}

export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_ITEM, key); else localStorage.removeItem(KEY_ITEM);
  } catch (e) { /* storage disabled: the key lasts until the page is left */ }
  blobUrls.clear();
}

function headers() {
  const out = {Accept: "application/json"};
  const key = apiKey();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

// media URLs fetched with the key (an <img> cannot send a header): url -> blob URL promise
const blobUrls = new Map();

/** A URL an <img>/<audio> can show: the URL itself without a key, else a blob URL of it
 *  fetched with the key (the key never goes into a URL). */
export function mediaSrc(url) {
  if (!url || !apiKey()) return Promise.resolve(url);
  if (!blobUrls.has(url)) {
    const p = fetch(url, {headers: {Authorization: `Bearer ${apiKey()}`}}).then(async (resp) => {
      if (!resp.ok) {
        if (resp.status === 401) window.dispatchEvent(new CustomEvent("seetrain:login", {detail: "your key is no longer valid"}));
        throw new ApiError(`${resp.status} ${resp.statusText}`, resp.status);
      }
      return URL.createObjectURL(await resp.blob());
    });
    p.catch(() => blobUrls.delete(url));
    blobUrls.set(url, p);
    if (blobUrls.size > 500) blobUrls.delete(blobUrls.keys().next().value);
  }
  return blobUrls.get(url);
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
    resp = await fetch(url, {headers: headers()});
  } catch (e) {
    throw new ApiError(`the dashboard server does not answer (${e.message}); is seetrain ui still running?`, 0);
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (resp.status === 401) {
    const message = (body && body.error) || "an API key is needed";
    window.dispatchEvent(new CustomEvent("seetrain:login", {detail: message}));
    throw new ApiError(message, 401);
  }
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
