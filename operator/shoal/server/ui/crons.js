// CronWorkflows: schedule, suspended or not, next and last fire; suspend/resume (and
// trigger, when the server has that route); a row opens the CronWorkflow's status.
import { act, get, hasRoute, poll } from "./api.js";
import { el, show } from "./util.js";

const CRON_POLL_MS = 5000;
const BASE = "/api/v1/cronworkflows/{namespace}/{name}";

function path(m, suffix = "") {
  return `/api/v1/cronworkflows/${encodeURIComponent(m.namespace)}/${encodeURIComponent(m.name)}${suffix}`;
}

export function cronsPage(container, current) {
  const namespace = current.query.get("namespace") || "";
  const ns = el("input", { name: "namespace", value: namespace, placeholder: "all" });
  const status = el("p", { class: "status", id: "cron-status" }, "Loading…");
  const body = el("tbody");
  const detail = el("pre", { id: "cron-detail", class: "log", hidden: true });
  const canTrigger = hasRoute("POST", `${BASE}/trigger`);
  show(container, el("h1", {}, "CronWorkflows"),
    el("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); location.hash = `#/crons${ns.value ? `?namespace=${encodeURIComponent(ns.value)}` : ""}`; } },
      el("label", {}, "Namespace ", ns), el("button", { type: "submit" }, "Filter")),
    status,
    el("table", { id: "crons", class: "grid" }, el("thead", {}, el("tr", {}, ["Name", "Namespace", "Schedule", "Suspended", "Next fire", "Last fire", ""].map((h) => el("th", {}, h)))), body),
    detail);

  const button = (label, method, url) => el("button", { type: "button", onclick: async () => {
    try {
      const result = await act(method, url, label === "Trigger" ? {} : undefined);
      show(status, `${label}: ${result?.message ?? "done"}`);
      await tick();
    } catch (err) {
      show(status, el("span", { class: "error" }, `${label}: ${err.message}`));
    }
  } }, label);

  const open = async (m) => {
    try {
      const cron = await get(path(m));
      detail.hidden = false;
      detail.textContent = JSON.stringify({ spec: cron.spec, status: cron.status }, null, 2);
    } catch (err) {
      show(status, el("span", { class: "error" }, err.message));
    }
  };

  const tick = async () => {
    try {
      const page = await get("/api/v1/cronworkflows", { namespace, limit: 500 });
      const trigger = await canTrigger;
      body.replaceChildren(...page.items.map((c) => {
        const m = c.metadata;
        const schedule = Array.isArray(c.schedule) ? c.schedule.join("; ") : c.schedule || "";
        return el("tr", { "data-name": m.name },
          el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); open(m); } }, m.name)),
          el("td", {}, m.namespace), el("td", {}, el("code", {}, schedule)), el("td", {}, c.suspend ? "yes" : "no"),
          el("td", {}, c.nextScheduleTime || ""), el("td", {}, c.lastScheduleTime || ""),
          el("td", {}, c.suspend ? button("Resume", "POST", path(m, "/resume")) : button("Suspend", "POST", path(m, "/suspend")),
            trigger ? button("Trigger", "POST", path(m, "/trigger")) : null));
      }));
      show(status, `${page.items.length} CronWorkflow${page.items.length === 1 ? "" : "s"}${page.continue ? " (first page)" : ""}`);
    } catch (err) {
      show(status, el("span", { class: "error" }, err.message));
      throw err;
    }
  };
  return poll(tick, CRON_POLL_MS);
}
