// Small DOM and formatting helpers. Text always goes in through textContent, never
// innerHTML: every name, message and log line is untrusted.

/** Build an element: el("a", {href: "#/x", class: "c"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (never text through markup). */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace a container's content. */
export function show(container, ...children) {
  container.replaceChildren();
  append(container, children);
}

/** "3/7" -> 0.43; a percent number -> fraction; else null. */
export function fraction(progress) {
  if (typeof progress === "number") return Math.max(0, Math.min(1, progress / 100));
  const match = /^(\d+)\/(\d+)$/.exec(progress || "");
  if (!match || Number(match[2]) === 0) return null;
  return Math.min(1, Number(match[1]) / Number(match[2]));
}

/** A progress bar (width set through the CSSOM: the CSP allows no inline style). */
export function progressBar(value, label) {
  const bar = el("span", { class: "bar-fill" });
  const frac = fraction(value);
  bar.style.width = `${Math.round((frac ?? 0) * 100)}%`;
  return el("span", { class: "bar", title: label ?? "", "data-value": frac ?? "" }, bar);
}

/** Seconds as "1h02m", "3m05s", "12s". */
export function duration(seconds) {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.floor(seconds);
  if (s >= 86400) return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

export function since(iso, until) {
  if (!iso) return null;
  const start = Date.parse(iso);
  const end = until ? Date.parse(until) : Date.now();
  return Number.isNaN(start) ? null : (end - start) / 1000;
}

/** A phase badge; its class gives its colour. */
export function phaseBadge(phase) {
  return el("span", { class: `phase phase-${(phase || "Pending").toLowerCase()}` }, phase || "Pending");
}

/** Parse "#/route/a/b?x=1" into {parts: ["route","a","b"], query: URLSearchParams}. */
export function parseHash(hash) {
  const [path, qs] = (hash.replace(/^#\/?/, "") || "workflows").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(qs || "") };
}

const PROTOCOL = "@shoal/2 ";

/** A log line for people: a protocol message (its token already stripped by the server)
 * in words, any other line as it is. */
export function readable(text) {
  if (!text.startsWith(PROTOCOL)) return text;
  try {
    const m = JSON.parse(text.slice(PROTOCOL.length));
    if (m.type === "progress") return `» progress${typeof m.percent === "number" ? ` ${m.percent}%` : ""}${m.message ? ` ${m.message}` : ""}`;
    if (m.type === "log") return `» ${m.level || "info"}: ${m.message}`;
    if (m.type === "output") return `» output ${m.key}`;
    return `» ${m.type}`;
  } catch {
    return text;
  }
}
