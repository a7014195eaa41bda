// The Workflow list: filters in the URL's hash, rows polled every LIST_POLL_MS (a
// bounded poll, not SSE: one request per page of 500 rows, so a thousand workflows cost
// two requests every few seconds), rows updated in place so the table never flickers.
import { get, poll } from "./api.js";
import { duration, el, phaseBadge, progressBar, show, since } from "./util.js";

const LIST_POLL_MS = 3000;
const PAGE = 500;
const MAX_ROWS = 5000;
const PHASES = ["", "Pending", "Running", "Succeeded", "Failed", "Error", "Stopped"];

/** Every page of the filtered list, up to MAX_ROWS rows. */
async function fetchAll(filters) {
  const rows = [];
  let cont = null;
  do {
    const page = await get("/api/v1/workflows", { ...filters, limit: PAGE, continue: cont });
    rows.push(...page.items);
    cont = page.continue;
  } while (cont && rows.length < MAX_ROWS);
  return { rows, more: Boolean(cont) };
}

function filterForm(query) {
  const field = (name, label, node) => el("label", {}, label, node);
  const ns = el("input", { name: "namespace", value: query.get("namespace") || "", placeholder: "all" });
  const prefix = el("input", { name: "namePrefix", value: query.get("namePrefix") || "", placeholder: "name prefix" });
  const phase = el("select", { name: "phase" }, PHASES.map((p) => el("option", { value: p, selected: p === (query.get("phase") || "") }, p || "any")));
  return el(
    "form",
    { id: "filters", class: "filters", onsubmit: (event) => {
      event.preventDefault();
      const q = new URLSearchParams();
      for (const input of [ns, prefix, phase]) if (input.value) q.set(input.name, input.value);
      location.hash = `#/workflows?${q}`;
    } },
    field("namespace", "Namespace ", ns),
    field("phase", "Phase ", phase),
    field("prefix", "Name ", prefix),
    el("button", { type: "submit" }, "Filter"),
  );
}

function rowCells(w) {
  const m = w.metadata;
  return [
    el("td", {}, el("a", { href: `#/workflow/${encodeURIComponent(m.namespace)}/${encodeURIComponent(m.name)}` }, m.name)),
    el("td", {}, m.namespace),
    el("td", {}, phaseBadge(w.phase), w.stopRequested && !w.finishedAt ? " stopping" : ""),
    el("td", {}, progressBar(w.progress, w.progress), " ", w.progress || ""),
    el("td", { class: "duration" }),
    el("td", { class: "age" }),
  ];
}

/** The two cells that change with the clock alone: only their text is touched. */
function setTimes(tr, w) {
  const dur = duration(since(w.startedAt, w.finishedAt || null));
  const age = duration(since(w.metadata.createdAt));
  if (tr.cells[4].textContent !== dur) tr.cells[4].textContent = dur;
  if (tr.cells[5].textContent !== age) tr.cells[5].textContent = age;
}

export function listPage(container, current) {
  const filters = {};
  for (const key of ["namespace", "phase", "namePrefix"]) if (current.query.get(key)) filters[key] = current.query.get(key);
  const status = el("p", { class: "status", id: "list-status" }, "Loading…");
  const body = el("tbody");
  const table = el("table", { id: "workflows", class: "grid" },
    el("thead", {}, el("tr", {}, ["Name", "Namespace", "Phase", "Progress", "Duration", "Age"].map((h) => el("th", {}, h)))),
    body);
  show(container, el("h1", {}, "Workflows"), filterForm(current.query), status, table);
  const rows = new Map();

  const tick = async () => {
    try {
      const { rows: items, more } = await fetchAll(filters);
      const seen = new Set();
      items.forEach((w, index) => {
        const key = `${w.metadata.namespace}/${w.metadata.name}`;
        seen.add(key);
        const stamp = JSON.stringify([w.phase, w.progress, w.startedAt, w.finishedAt, w.stopRequested]);
        let tr = rows.get(key);
        if (!tr) {
          tr = el("tr", { "data-name": w.metadata.name, "data-namespace": w.metadata.namespace });
          rows.set(key, tr);
        }
        if (tr.dataset.stamp !== stamp) {
          tr.dataset.stamp = stamp;
          tr.dataset.phase = w.phase;
          tr.replaceChildren(...rowCells(w));
        }
        setTimes(tr, w);
        if (body.children[index] !== tr) body.insertBefore(tr, body.children[index] || null);
      });
      for (const [key, tr] of rows) if (!seen.has(key)) { tr.remove(); rows.delete(key); }
      show(status, `${items.length} workflow${items.length === 1 ? "" : "s"}${more ? ` (the first ${items.length}; narrow the filters)` : ""} · updated ${new Date().toLocaleTimeString()}`);
    } catch (err) {
      const hint = err.status === 403 && !filters.namespace ? " Type a namespace you may read in the filter." : "";
      show(status, el("span", { class: "error" }, err.message + hint));
      throw err;
    }
  };
  return poll(tick, LIST_POLL_MS);
}
