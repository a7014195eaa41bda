// The node panel: phase, progress bar and message, attempts, outputs, a fan-out's items
// (a virtualized list: only the rows in view exist, so 10,000 items cost what 30 do), and
// the live log tail through the server's SSE log route (reconnecting while the node runs).
import { follow, get, hasRoute } from "./api.js";
import { el, phaseBadge, progressBar, readable, show } from "./util.js";

const ROW = 22;
const OVERSCAN = 10;
const MAX_LOG_LINES = 5000;
const RECONNECTS = 100;
const FINISHED = new Set(["Succeeded", "Failed", "Skipped", "Omitted"]);

/** "0-3,5" -> sorted [[0,3],[5,5]]; a predicate by binary search. */
export function rangeSet(text) {
  const ranges = [];
  for (const part of (text || "").split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m) ranges.push([Number(m[1]), Number(m[2] ?? m[1])]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  return (i) => {
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (i < ranges[mid][0]) hi = mid - 1;
      else if (i > ranges[mid][1]) lo = mid + 1;
      else return true;
    }
    return false;
  };
}

function itemState(status) {
  const failed = new Map((status.failedItems || []).map((f) => [f.index, f.message]));
  const succeeded = rangeSet(status.succeededItems);
  const open = status.phase === "Running" || status.phase === "Pending" ? "pending or running" : "";
  return (i) => (failed.has(i) ? `Failed: ${failed.get(i)}` : succeeded(i) ? "Succeeded" : open);
}

/** A virtualized list of `total` items; onPick(i) when one is clicked. */
function itemList(onPick) {
  const inner = el("div", { class: "items-inner" });
  const box = el("div", { id: "items", class: "items" }, inner);
  let total = 0;
  let stateOf = () => "";
  let picked = null;
  const render = () => {
    inner.style.height = `${total * ROW}px`;
    const first = Math.max(0, Math.floor(box.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(total, Math.ceil((box.scrollTop + box.clientHeight) / ROW) + OVERSCAN);
    const rows = [];
    for (let i = first; i < last; i++) {
      const row = el("div", { class: `item${picked === i ? " picked" : ""}`, "data-item": i, onclick: () => { picked = i; render(); onPick(i); } }, `#${i}`, el("span", {}, stateOf(i)));
      row.style.top = `${i * ROW}px`;
      rows.push(row);
    }
    inner.replaceChildren(...rows);
  };
  let queued = false;
  box.addEventListener("scroll", () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; render(); });
  });
  return {
    box,
    update(count, state) { total = count; stateOf = state; render(); },
  };
}

const ATTEMPTS = "/api/v1/workflows/{namespace}/{name}/nodes/{node}/attempts";

/** Every attempt of the node (exit code, reason, message), when the server has the
 * attempts route; fetched again only when the node's attempts or phase change. */
function attemptsTable(path) {
  const body = el("tbody");
  const box = el("div", { id: "node-attempt-list", hidden: true },
    el("table", { class: "grid" }, el("thead", {}, el("tr", {}, ["item", "attempt", "phase", "exit", "reason", "message"].map((h) => el("th", {}, h)))), body));
  let key = null;
  const available = hasRoute("GET", ATTEMPTS);
  return {
    box,
    async refresh(status) {
      const next = `${status.attempts}/${status.phase}/${status.items?.failed ?? ""}`;
      if (next === key || !(await available)) return;
      key = next;
      try {
        const page = await get(path, { limit: 200 });
        body.replaceChildren(...page.items.map((a) => el("tr", {},
          el("td", {}, a.item), el("td", {}, a.attempt), el("td", {}, a.phase), el("td", {}, a.exitCode ?? ""),
          el("td", {}, a.reason || ""), el("td", {}, a.message || ""))));
        box.hidden = page.items.length === 0;
      } catch {
        key = null;  // try again on the next update
      }
    },
  };
}

/** The panel for one node; returns {update(status), close()}. */
export function nodePanel(container, where, shape) {
  const logPath = `/api/v1/workflows/${encodeURIComponent(where.namespace)}/${encodeURIComponent(where.name)}/nodes/${encodeURIComponent(shape.name)}/log`;
  const log = el("pre", { id: "node-log", class: "log" });
  const logNote = el("p", { class: "status", id: "log-note" });
  const facts = el("div", { id: "node-facts" });
  const items = shape.fanOut ? itemList((i) => startLog(i)) : null;
  const attempts = attemptsTable(logPath.replace(/\/log$/, "/attempts"));
  let status = {};
  let stream = null;

  const startLog = (item) => {
    if (stream) stream.abort();
    const ctrl = new AbortController();
    stream = ctrl;
    show(logNote, item === null ? "following the log" : `following item #${item}`);
    (async () => {
      for (let round = 0; round < RECONNECTS && !ctrl.signal.aborted; round++) {
        log.replaceChildren();  // a reconnect replays the tail
        try {
          await follow(logPath, { follow: true, tail: 500, seconds: 300, item }, (kind, data) => {
            if (kind === "line" && data) {
              log.append(`${readable(data.text)}\n`);
              while (log.childNodes.length > MAX_LOG_LINES) log.firstChild.remove();
              log.scrollTop = log.scrollHeight;
            } else if (kind === "error" && data) show(logNote, el("span", { class: "error" }, data.message));
          }, ctrl.signal);
        } catch (err) {
          if (ctrl.signal.aborted) return;
          show(logNote, err.status === 404 ? "no pod yet: waiting for it" : el("span", { class: "error" }, err.message));
        }
        if (FINISHED.has(status.phase) && log.childNodes.length) return;
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    })();
  };

  const panel = el("aside", { id: "node-panel", class: "panel", "data-node": shape.name },
    el("div", { class: "panel-head" }, el("h2", {}, shape.name), el("button", { type: "button", class: "link", onclick: () => where.onClose() }, "close")),
    facts,
    attempts.box,
    items ? el("h3", {}, "Items") : null,
    items ? items.box : null,
    el("h3", {}, "Log"),
    logNote,
    log);
  container.replaceChildren(panel);

  const update = (next) => {
    status = next || {};
    const outputs = status.outputs ? JSON.stringify(status.outputs, null, 2) : null;
    show(facts,
      el("p", {}, phaseBadge(status.phase), status.startedAt ? ` started ${status.startedAt}` : "", status.finishedAt ? `, finished ${status.finishedAt}` : ""),
      el("p", { id: "node-progress", "data-progress": status.progress ?? "" }, progressBar(status.progress, status.message), " ",
        typeof status.progress === "number" ? `${Math.round(status.progress)}%` : "", status.message ? ` · ${status.message}` : ""),
      el("p", { id: "node-attempts" }, `attempts: ${status.attempts ?? 0}`,
        status.exitCode !== undefined && status.exitCode !== null ? ` · last exit code ${status.exitCode}` : ""),
      shape.when ? el("p", {}, "when: ", el("code", {}, shape.when)) : null,
      shape.runPolicy ? el("p", {}, `runPolicy: ${shape.runPolicy}`) : null,
      outputs ? el("details", { open: true }, el("summary", {}, "Outputs"), el("pre", { id: "node-outputs" }, outputs)) : null,
      status.outputsOmitted ? el("p", { class: "status" }, `outputs not in the status: ${status.outputsOmitted}`) : null);
    if (items) items.update(status.items?.total ?? 0, itemState(status));
    attempts.refresh(status);
  };
  update(where.status);
  if (!shape.fanOut) startLog(null);
  else show(logNote, "pick an item to follow its log");
  return { update, close: () => stream?.abort() };
}
