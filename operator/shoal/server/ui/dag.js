// The Workflow's DAG as SVG, laid out in layers by @dagrejs/dagre (from npm, `make ui`).
// One box per node (a fan-out is one box with its item counts), coloured by phase, with
// its `when` condition and a non-default runPolicy written in it; edges for dependsOn.
// The layout is computed once per set of nodes and edges; a live update only changes
// the boxes' classes and texts, so a poll never re-lays the graph out.
import dagre from "./vendor/dagre.esm.js";
import { svg } from "./util.js";

const WIDTH = 270;
const LINE = 16;
const MAX_CHARS = 40;

/** The graph's shape from the spec: [{name, deps, when, runPolicy, fanOut, exit}]. */
export function graphOf(spec) {
  const nodes = (spec.nodes || []).map((n) => ({
    name: String(n.name),
    deps: Array.isArray(n.dependsOn) ? n.dependsOn.map(String) : [],
    when: typeof n.when === "string" ? n.when : null,
    runPolicy: n.runPolicy && n.runPolicy !== "onSuccess" ? String(n.runPolicy) : null,
    fanOut: n.forEach !== undefined && n.forEach !== null ? "forEach" : n.withSequence ? "withSequence" : null,
    exit: spec.onExit === n.name,
  }));
  return nodes;
}

function clip(text) {
  return text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS - 1)}…` : text;
}

function countsText(items) {
  if (!items) return null;
  return `${items.total} items · ✓${items.succeeded} ▶${items.running} ✗${items.failed} …${items.pending}`;
}

/** The text lines of one box, from its shape and its live status. */
function lines(node, status) {
  const out = [node.name];
  const s = status || {};
  let second = s.phase || "Pending";
  if (s.attempts > 1) second += ` · attempt ${s.attempts}`;
  if (typeof s.progress === "number" && s.phase === "Running") second += ` · ${Math.round(s.progress)}%`;
  out.push(second);
  if (node.fanOut) out.push(countsText(s.items) || `${node.fanOut} (not expanded yet)`);
  if (node.when) out.push(`when: ${node.when}`);
  if (node.runPolicy) out.push(`runPolicy: ${node.runPolicy}`);
  if (node.exit) out.push("onExit handler");
  return out;
}

/** Lay the graph out; returns {width, height, boxes: Map(name -> {x,y,w,h}), edges}. */
export function layout(nodes) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 46, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const names = new Set(nodes.map((n) => n.name));
  for (const n of nodes) g.setNode(n.name, { width: WIDTH, height: boxHeight(n) });
  for (const n of nodes) for (const d of n.deps) if (names.has(d)) g.setEdge(d, n.name);
  dagre.layout(g);
  const boxes = new Map();
  for (const n of nodes) {
    const b = g.node(n.name);
    boxes.set(n.name, { x: b.x - b.width / 2, y: b.y - b.height / 2, w: b.width, h: b.height });
  }
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points }));
  const { width, height } = g.graph();
  return { width, height, boxes, edges };
}

function boxHeight(node) {
  return 14 + LINE * (2 + (node.fanOut ? 1 : 0) + (node.when ? 1 : 0) + (node.runPolicy ? 1 : 0) + (node.exit ? 1 : 0));
}

/** A structure key: the layout is redone only when it changes. */
export function shapeKey(nodes) {
  return JSON.stringify(nodes.map((n) => [n.name, n.deps, Boolean(n.fanOut), Boolean(n.when), Boolean(n.runPolicy), n.exit]));
}

/** Draw the graph; returns update(statusNodes, selected) for live changes. */
export function drawDag(container, nodes, onSelect) {
  const shape = layout(nodes);
  const root = svg("svg", {
    id: "dag", class: "dag", width: shape.width, height: shape.height,
    viewBox: `0 0 ${shape.width} ${shape.height}`, role: "img", "aria-label": "workflow graph",
  });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }))));
  for (const e of shape.edges) {
    const d = e.points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
    root.append(svg("path", { d, class: "edge", "marker-end": "url(#arrow)", "data-from": e.from, "data-to": e.to }));
  }
  const groups = new Map();
  for (const n of nodes) {
    const b = shape.boxes.get(n.name);
    const g = svg("g", { class: "node", "data-node": n.name, transform: `translate(${b.x},${b.y})`, tabindex: 0, role: "button", onclick: () => onSelect(n.name), onkeydown: (ev) => { if (ev.key === "Enter") onSelect(n.name); } });
    g.append(svg("title", {}, n.name), svg("rect", { width: b.w, height: b.h, rx: 6 }));
    groups.set(n.name, g);
    root.append(g);
  }
  container.replaceChildren(root);

  return function update(statusNodes, selected) {
    for (const n of nodes) {
      const g = groups.get(n.name);
      const s = statusNodes[n.name] || {};
      const phase = (s.phase || "Pending").toLowerCase();
      g.setAttribute("class", `node phase-${phase}${n.fanOut ? " fanout" : ""}${selected === n.name ? " selected" : ""}`);
      g.dataset.phase = s.phase || "Pending";
      const texts = lines(n, s);
      const key = JSON.stringify(texts);
      if (g.dataset.text === key) continue;
      g.dataset.text = key;
      for (const t of g.querySelectorAll("text")) t.remove();
      texts.forEach((text, i) => g.append(svg("text", { x: 10, y: 20 + i * LINE, class: i === 0 ? "name" : "detail" }, clip(text))));
    }
  };
}
