// Archive search: finished runs kept in PostgreSQL, readable after their pods and even
// their Workflow are gone. Routes (GET /api/v1/archive/workflows, .../{namespace}/{uid},
// .../nodes/{node}/log) come with the archive API; without them the page says so.
import { get, hasRoute } from "./api.js";
import { el, phaseBadge, readable, show } from "./util.js";

const LIST = "/api/v1/archive/workflows";
const PHASES = ["", "Succeeded", "Failed", "Error", "Stopped"];

function runPath(m) {
  return `${LIST}/${encodeURIComponent(m.namespace)}/${encodeURIComponent(m.uid)}`;
}

async function openRun(out, m) {
  try {
    const run = await get(runPath(m));
    const nodes = Object.entries(run.status?.nodes || {});
    const log = el("pre", { id: "archive-log", class: "log" });
    const readLog = async (node) => {
      try {
        const page = await get(`${runPath(m)}/nodes/${encodeURIComponent(node)}/log`);
        log.textContent = (page.lines || []).map((l) => readable(l.text)).join("\n") || "(no lines)";
      } catch (err) {
        log.textContent = err.message;
      }
    };
    show(out, el("h2", {}, `${m.name} (${m.namespace})`), el("p", {}, phaseBadge(run.status?.phase)),
      el("table", { class: "grid" }, el("tbody", {}, nodes.map(([node, s]) => el("tr", { "data-node": node },
        el("td", {}, node), el("td", {}, phaseBadge(s.phase)), el("td", {}, s.message || ""),
        el("td", {}, el("button", { type: "button", onclick: () => readLog(node) }, "Log")))))),
      log);
  } catch (err) {
    show(out, el("p", { class: "error" }, err.message));
  }
}

export function archivePage(container, current) {
  const q = current.query;
  const input = (name, ph) => el("input", { name, value: q.get(name) || "", placeholder: ph });
  const fields = [input("namespace", "all"), input("namePrefix", "name prefix"), input("labelSelector", "app=x")];
  const phase = el("select", { name: "phase" }, PHASES.map((p) => el("option", { value: p, selected: p === (q.get("phase") || "") }, p || "any")));
  const status = el("p", { class: "status", id: "archive-status" });
  const results = el("tbody");
  const out = el("div", { id: "archive-run" });
  const more = el("button", { type: "button", hidden: true }, "More");
  show(container, el("h1", {}, "Archive"),
    el("form", { class: "filters", onsubmit: (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      for (const f of [...fields, phase]) if (f.value) p.set(f.name, f.value);
      location.hash = `#/archive?${p}`;
    } }, fields.map((f) => el("label", {}, `${f.name} `, f)), el("label", {}, "phase ", phase), el("button", { type: "submit" }, "Search")),
    status, el("table", { id: "archive", class: "grid" }, results), more, out);

  let cont = null;
  const search = async () => {
    const params = { limit: 100, continue: cont };
    for (const f of [...fields, phase]) if (f.value) params[f.name] = f.value;
    try {
      const page = await get(LIST, params);
      for (const w of page.items || []) {
        const m = w.metadata;
        results.append(el("tr", { "data-uid": m.uid },
          el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); openRun(out, m); } }, m.name)),
          el("td", {}, m.namespace), el("td", {}, phaseBadge(w.phase)), el("td", {}, w.finishedAt || "")));
      }
      cont = page.continue || null;
      more.hidden = !cont;
      show(status, `${results.children.length} archived run(s)`);
    } catch (err) {
      show(status, el("span", { class: "error" }, err.message));
    }
  };
  more.addEventListener("click", search);
  hasRoute("GET", LIST).then((has) => {
    if (has) search();
    else show(status, "This server has no archive: it shows live Workflows only (configure the PostgreSQL archive to search finished runs).");
  });
  return null;
}
