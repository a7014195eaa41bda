// The dashboard's entry: the login form and a hash router over the pages. Each page is a
// function (container, route) -> cleanup, so leaving a page stops its polls and streams.
import { token } from "./api.js";
import { archivePage } from "./archive.js";
import { cronsPage } from "./crons.js";
import { listPage } from "./list.js";
import { el, parseHash, show } from "./util.js";
import { workflowPage } from "./workflow.js";

const main = document.getElementById("main");
const logout = document.getElementById("logout");
let cleanup = null;
let refused = false;
// A local `shoal run --ui` needs no token: its /api/v1/session says so (the cluster's
// server has no such route, so a token is asked for).
let authRequired = true;

function loginPage(container) {
  const input = el("input", { id: "token", type: "password", autocomplete: "off", required: true, placeholder: "Kubernetes bearer token" });
  const form = el(
    "form",
    { id: "login", class: "card", onsubmit: (event) => {
      event.preventDefault();
      token.set(input.value.trim());
      input.value = "";
      refused = false;
      route();
    } },
    el("h1", {}, "Log in"),
    refused ? el("p", { class: "error", id: "login-error" }, "The Kubernetes API server did not accept that token (expired, or not a token). Log in again.") : null,
    el("p", {}, "Paste a Kubernetes token (", el("code", {}, "kubectl create token NAME"), "). Kubernetes RBAC decides what you see and may change. It is kept in this tab only."),
    input,
    el("button", { type: "submit" }, "Log in"),
  );
  show(container, form);
  input.focus();
  return null;
}

const PAGES = { workflows: listPage, workflow: workflowPage, crons: cronsPage, archive: archivePage };

function route() {
  if (cleanup) cleanup();
  cleanup = null;
  const current = parseHash(location.hash);
  logout.hidden = !authRequired || !token.get();
  if (authRequired && !token.get()) {
    cleanup = loginPage(main);
    return;
  }
  const page = PAGES[current.parts[0]] || listPage;
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", link.getAttribute("href") === `#/${current.parts[0]}`);
  }
  cleanup = page(main, current);
}

logout.addEventListener("click", () => {
  refused = false;
  token.clear();
  route();
});
window.addEventListener("shoal:unauthorized", () => {
  if (token.get()) refused = true;
  token.clear();
  route();
});
window.addEventListener("hashchange", route);

async function start() {
  try {
    const answer = await fetch("/api/v1/session", { headers: { Accept: "application/json" } });
    if (answer.ok) authRequired = (await answer.json()).authRequired !== false;
  } catch {
    // No session route: a token is asked for.
  }
  route();
}
start();
