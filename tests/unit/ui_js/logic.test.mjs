// The dashboard's pure logic under node's own test runner (no browser, no DOM): what the
// pages compute from the API's answers. Run by tests/unit/test_ui_js.py.
import assert from "node:assert/strict";
import { test } from "node:test";

import { graphOf, layout, shapeKey } from "../../../operator/shoal/server/ui/dag.js";
import { rangeSet } from "../../../operator/shoal/server/ui/panel.js";
import { duration, fraction, parseHash, readable } from "../../../operator/shoal/server/ui/util.js";

test("succeededItems ranges answer membership at both ends and between", () => {
  const has = rangeSet("5,0-3,10-9999");
  for (const i of [0, 3, 5, 10, 5000, 9999]) assert.equal(has(i), true, `item ${i}`);
  for (const i of [4, 6, 9, 10000, -1]) assert.equal(has(i), false, `item ${i}`);
  assert.equal(rangeSet("")(0), false);
  assert.equal(rangeSet("x,2")(2), true, "a malformed part is ignored, not fatal");
});

test("progress: 'done/all' and percents become fractions, nonsense becomes null", () => {
  assert.equal(fraction("3/4"), 0.75);
  assert.equal(fraction("0/0"), null);
  assert.equal(fraction(50), 0.5);
  assert.equal(fraction(250), 1);
  assert.equal(fraction(undefined), null);
  assert.equal(fraction("<img>"), null);
});

test("durations read as people write them", () => {
  assert.equal(duration(12.7), "12s");
  assert.equal(duration(185), "3m05s");
  assert.equal(duration(3720), "1h02m");
  assert.equal(duration(90000), "1d01h");
  assert.equal(duration(-1), "");
  assert.equal(duration(null), "");
});

test("routes parse from the hash, names decoded, list by default", () => {
  const r = parseHash("#/workflow/team%20a/nightly?node=x");
  assert.deepEqual(r.parts, ["workflow", "team a", "nightly"]);
  assert.equal(r.query.get("node"), "x");
  assert.deepEqual(parseHash("").parts, ["workflows"]);
});

test("protocol lines read as words; other lines are left alone", () => {
  assert.equal(readable('@shoal/2 {"type":"progress","percent":12,"message":"step 12"}'), "» progress 12% step 12");
  assert.equal(readable('@shoal/2 {"type":"log","level":"warning","message":"slow"}'), "» warning: slow");
  assert.equal(readable("@shoal/2 not json"), "@shoal/2 not json");
  assert.equal(readable("tick 7"), "tick 7");
});

test("the graph: fan-outs, conditions, runPolicy and edges from the spec, laid out in layers", () => {
  const spec = {
    onExit: "notify",
    nodes: [
      { name: "a" },
      { name: "b", dependsOn: ["a"], forEach: [1, 2], when: "x > 1" },
      { name: "c", dependsOn: ["b", "missing"], runPolicy: "always" },
      { name: "notify" },
    ],
  };
  const nodes = graphOf(spec);
  assert.deepEqual(nodes.map((n) => [n.name, n.fanOut, n.when, n.runPolicy, n.exit]), [
    ["a", null, null, null, false],
    ["b", "forEach", "x > 1", null, false],
    ["c", null, null, "always", false],
    ["notify", null, null, null, true],
  ]);
  const shape = layout(nodes);
  assert.deepEqual(shape.edges.map((e) => `${e.from}->${e.to}`).sort(), ["a->b", "b->c"]);
  const y = (name) => shape.boxes.get(name).y;
  assert.ok(y("a") < y("b") && y("b") < y("c"), "each dependency sits above its dependant");
  assert.notEqual(shapeKey(nodes), shapeKey(graphOf({ nodes: spec.nodes.slice(0, 3) })));
});
