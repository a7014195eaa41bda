// One Workflow: header with phase, progress and actions; the DAG; the node panel. The
// Workflow is polled every WORKFLOW_POLL_MS; the node's log streams (SSE) in the panel.
import { act, get, hasRoute, poll } from "./api.js";
import { drawDag, graphOf, shapeKey } from "./dag.js";
import { nodePanel } from "./panel.js";
import { duration, el, phaseBadge, progressBar, show, since } from "./util.js";

const WORKFLOW_POLL_MS = 1500;
const FINISHED = new Set(["Succeeded", "Failed", "Error", "Stopped"]);
const BASE = "/api/v1/workflows/{namespace}/{name}";

/** The action buttons: [label, method, suffix, when(phase)]; shown only if the server
 * has the route (its OpenAPI document says so) and the phase allows it. */
const ACTIONS = [
  ["Stop", "POST", "/stop", (p) => !FINISHED.has(p)],
  ["Terminate", "POST", "/terminate", (p) => !FINISHED.has(p)],
  ["Retry", "POST", "/retry", (p) => p === "Failed" || p === "Stopped"],
  ["Resubmit", "POST", "/resubmit", (p) => FINISHED.has(p)],
  ["Delete", "DELETE", "", () => true],
];

function actionBar(where, note, refresh) {
  const bar = el("div", { class: "actions", id: "actions" });
  const buttons = [];
  for (const [label, method, suffix, allowed] of ACTIONS) {
    const button = el("button", { type: "button", "data-action": label.toLowerCase(), hidden: true });
    button.textContent = label;
    let armed = false;
    button.addEventListener("click", async () => {
      if (label === "Delete" && !armed) { armed = true; button.textContent = "Really delete?"; return; }
      button.disabled = true;
      try {
        const body = label === "Resubmit" ? {} : undefined;
        const result = await act(method, `/api/v1/workflows/${encodeURIComponent(where.namespace)}/${encodeURIComponent(where.name)}${suffix}`, body);
        show(note, `${label}: ${result?.message ?? "done"}`);
        const made = result?.metadata?.name;
        if (label === "Delete") location.hash = "#/workflows";
        else if (label === "Resubmit" && made && made !== where.name) location.hash = `#/workflow/${encodeURIComponent(where.namespace)}/${encodeURIComponent(made)}`;
        else await refresh();
      } catch (err) {
        show(note, el("span", { class: "error" }, `${label}: ${err.message}`));
        if (err.status === 404 && err.code !== "NotFound") button.remove();
      } finally {
        button.disabled = false;
      }
    });
    hasRoute(method, `${BASE}${suffix}`).then((has) => {
      if (!has) return button.remove();
      buttons.push([button, allowed]);
      if (phase !== null) button.hidden = !allowed(phase);
    });
    bar.append(button);
  }
  let phase = null;
  const update = (next) => {
    phase = next;
    for (const [b, allowed] of buttons) b.hidden = !allowed(phase);
  };
  return { bar, update };
}

export function workflowPage(container, current) {
  const [, namespace, name] = current.parts;
  const head = el("div", { id: "wf-head" });
  const note = el("p", { class: "status", id: "action-note" });
  const graph = el("div", { class: "graph" });
  const side = el("div", { class: "side" });
  const where = { namespace, name, onClose: () => select(null) };
  let shape = null;
  let key = null;
  let update = null;
  let panel = null;
  let selected = null;
  let last = null;
  const actions = actionBar(where, note, () => tick());
  show(container, el("p", {}, el("a", { href: `#/workflows?namespace=${encodeURIComponent(namespace)}` }, "← Workflows")),
    el("h1", {}, name, el("small", {}, ` in ${namespace}`)), head, actions.bar, note, el("div", { class: "workflow" }, graph, side));

  function select(node) {
    panel?.close();
    panel = null;
    selected = node;
    side.replaceChildren();
    const s = shape?.find((n) => n.name === node);
    if (s) panel = nodePanel(side, { ...where, status: last?.status?.nodes?.[node] }, s);
    if (update && last) update(last.status.nodes || {}, selected);
  }

  async function tick() {
    const wf = await get(`/api/v1/workflows/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`).catch((err) => {
      show(head, el("p", { class: "error" }, err.message));
      throw err;
    });
    last = wf;
    const st = wf.status || {};
    show(head,
      el("p", {}, phaseBadge(st.phase), el("span", { id: "wf-phase", hidden: true }, st.phase || "Pending"),
        wf.spec?.stop && !FINISHED.has(st.phase) ? " stop requested" : "", " ", progressBar(st.progress), ` ${st.progress || ""}`,
        st.startedAt ? ` · ${duration(since(st.startedAt, st.finishedAt))}` : ""),
      st.message ? el("p", { class: "status" }, st.message) : null);
    actions.update(st.phase || "Pending");
    const nodes = graphOf(wf.spec || {});
    const k = shapeKey(nodes);
    if (k !== key) {
      key = k;
      shape = nodes;
      update = drawDag(graph, nodes, select);
    }
    update(st.nodes || {}, selected);
    if (panel && selected) panel.update(st.nodes?.[selected]);
    container.dataset.ready = "true";
  }

  const stop = poll(tick, WORKFLOW_POLL_MS);
  return () => { stop(); panel?.close(); };
}
