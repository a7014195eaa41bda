// Every call to the server. The bearer token lives in sessionStorage only (gone when the
// tab closes; never in a URL, a cookie or a log) and goes out as `Authorization: Bearer`.
// State-changing calls add `X-Shoal-Request: 1`, which the server's CSRF guard requires.

const TOKEN_KEY = "shoal.token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An API refusal, with the server's error shape ({code, message, field?, node?}). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || "Error";
  }
}

function headers(write) {
  const h = { Accept: "application/json" };
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  if (write) h["X-Shoal-Request"] = "1";
  return h;
}

/** Build "/api/v1/x?k=v" from a path and a params object (empty values left out). */
export function url(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function answer(response) {
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new CustomEvent("shoal:unauthorized"));
    throw new ApiError(response.status, body);
  }
  return body;
}

export async function get(path, params, signal) {
  return answer(await fetch(url(path, params), { headers: headers(false), signal }));
}

export async function act(method, path, body) {
  const init = { method, headers: headers(true) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  return answer(await fetch(path, init));
}

let routes = null;

/** The server's routes, from its OpenAPI document: a button whose route the server does
 * not have is not shown (helpers add routes in parallel; the page asks, never guesses). */
export async function hasRoute(method, path) {
  if (routes === null) {
    routes = fetch("/api/v1/openapi.json").then((r) => (r.ok ? r.json() : { paths: {} })).catch(() => ({ paths: {} }));
  }
  const doc = await routes;
  return Boolean(doc.paths?.[path]?.[method.toLowerCase()]);
}

/** Follow a Server-Sent Events stream with the bearer header (EventSource cannot send
 * one), calling onEvent(kind, data) per event, until it ends or `signal` aborts. */
export async function follow(path, params, onEvent, signal) {
  const response = await fetch(url(path, params), { headers: headers(false), signal });
  if (!response.ok) await answer(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let kind = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) kind = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      try {
        onEvent(kind, JSON.parse(data.join("\n") || "null"));
      } catch {
        onEvent(kind, null);
      }
    }
  }
}

/** Call `tick` now and then every `ms` (bounded: at least 1 s, backing off on errors to
 * 30 s) while the page is shown; returns a stop function. */
export function poll(tick, ms) {
  let stopped = false;
  let timer = null;
  let wait = Math.max(1000, ms);
  const run = async () => {
    if (stopped) return;
    try {
      if (!document.hidden) await tick();
      wait = Math.max(1000, ms);
    } catch {
      wait = Math.min(30000, wait * 2);
    }
    if (!stopped) timer = setTimeout(run, wait);
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
