"""Bounded input (issue 13): hostile sizes, depths and expressions give a message that names
the node, the field and the limit, promptly, and never a RecursionError or a stall.

Each limit is read from `shoal.api.limits`, the module the CRDs, the operator and the CLI
read, so these tests follow the numbers a user sees in docs/security.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from shoal.api import crd, limits
from shoal.api.workflow import NodePhase, WorkflowSpec
from shoal.core import jsonbounds
from shoal.core.compiled import WorkflowMeta
from shoal.core.expressions import ExpressionError, compile_expression
from shoal.core.sandbox import SANDBOX
from shoal.core.validation import InvalidWorkflow, compile_workflow
from shoal.manifests import compile_manifest, load_file
from tests.unit.simulator import Simulator, ok, workflow

HUNDRED = "[" + ",".join(str(i) for i in range(100)) + "]"


def nested_all(levels: int, inner: str = "true") -> str:
    """`[0..99].all(a, [0..99].all(b, ... true))`: 100**levels steps."""
    text = inner
    for var in "abcdefgh"[:levels]:
        text = f"{HUNDRED}.all({var}, {text})"
    return text


def deep_object(levels: int) -> dict[str, Any]:
    """{"a": {"a": ... 1}} built without recursion."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    assert isinstance(value, dict)
    return value


def deep_json_text(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def problems_of(spec: dict[str, Any], params: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(InvalidWorkflow) as err:
        compile_workflow(WorkflowSpec.model_validate(spec), WorkflowMeta(name="wf"), params)
    return [p.describe() for p in err.value.problems]


def spec_of(*nodes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"image": "worker:1", **spec, "nodes": list(nodes)}


# --- JSON depth and size -----------------------------------------------------------------


def test_3000_deep_args_are_refused_naming_node_field_and_limit() -> None:
    # The old compiler recursed into args and raised RecursionError.
    node = {"name": "deep", "job": "j", "args": {"x": deep_object(3000)}}
    problems = problems_of(spec_of({"name": "ok", "job": "j"}, node))
    limit = limits.MAX_JSON_DEPTH
    assert problems == [f"node 'deep': args: nests deeper than {limit} levels (limit {limit})"]


def test_args_at_the_depth_limit_compile() -> None:
    wf = workflow({"name": "a", "args": {"x": deep_object(limits.MAX_JSON_DEPTH - 1)}})
    assert wf.nodes["a"].args["x"]["a"]["a"]


def test_deep_parameters_are_refused_naming_the_field() -> None:
    spec = spec_of({"name": "a", "job": "j"}, parameters={"p": deep_object(3000)})
    assert problems_of(spec) == [
        f"spec.parameters: nests deeper than {limits.MAX_JSON_DEPTH} levels "
        f"(limit {limits.MAX_JSON_DEPTH})"
    ]


def test_deep_given_parameters_are_refused() -> None:
    spec = spec_of({"name": "a", "job": "j"}, parameters={"p": 0})
    problems = problems_of(spec, {"p": deep_object(100)})
    assert problems == [
        f"parameters: nests deeper than {limits.MAX_JSON_DEPTH} levels "
        f"(limit {limits.MAX_JSON_DEPTH})"
    ]


def test_a_literal_for_each_with_too_many_values_is_refused() -> None:
    items = list(range(limits.MAX_JSON_ELEMENTS + 1))
    node = {"name": "fan", "job": "j", "forEach": items, "itemArg": "i"}
    (problem,) = problems_of(spec_of(node))
    assert problem.startswith("node 'fan': forEach: has more than")
    assert f"(limit {limits.MAX_JSON_ELEMENTS})" in problem


def test_json_problem_counts_text_and_values() -> None:
    assert jsonbounds.json_problem({"a": ["x" * 10, {"b": 1}]}) is None
    assert "limit 5" in str(jsonbounds.json_problem(["y" * 6], max_bytes=5))
    assert "limit 2" in str(jsonbounds.json_problem([1, 2], max_elements=2))


def test_decoder_cuts_what_the_c_decoder_cannot_nest() -> None:
    with pytest.raises(RecursionError):
        json.loads(deep_json_text(3000))  # why the operator's watch used to die
    event = jsonbounds.loads(f'{{"type":"ADDED","object":{{"args":{deep_json_text(3000)}}}}}')
    assert event["type"] == "ADDED"
    inner = event["object"]["args"]
    for _ in range(limits.MAX_DECODE_DEPTH - 2):
        inner = inner["a"]
    assert inner == jsonbounds.CUT
    assert "limit" in str(jsonbounds.json_problem(event["object"]["args"]))


def test_decoder_cuts_a_value_with_too_many_members_and_validation_names_the_limit() -> None:
    """A Workflow carrying more values than any field may hold is refused either way; cut
    at decoding, the operator never holds (and copies) the whole of it."""
    huge = list(range(limits.MAX_JSON_ELEMENTS + 1))
    node = {"name": "a", "command": ["true"], "forEach": huge}
    body = {"spec": {"parameters": {"xs": huge}, "nodes": [node]}}
    event = jsonbounds.loads(json.dumps({"type": "ADDED", "object": body}))
    spec = event["object"]["spec"]
    assert spec["parameters"]["xs"] == jsonbounds.CUT_LARGE
    assert spec["nodes"][0]["forEach"] == jsonbounds.CUT_LARGE
    limit = f"has more than {limits.MAX_JSON_ELEMENTS} values (limit {limits.MAX_JSON_ELEMENTS})"
    assert problems_of({"nodes": spec["nodes"]}) == [f"node 'a': forEach: {limit}"]
    assert any(limit in p for p in problems_of(spec))
    # A list response's own items and ordinary values are never cut.
    listed = jsonbounds.loads(json.dumps({"items": [{"a": 1}] * 3, "v": list(range(10))}))
    assert listed == {"items": [{"a": 1}] * 3, "v": list(range(10))}


@pytest.mark.parametrize("levels", [limits.MAX_DECODE_DEPTH + 1, 900])
def test_decoder_cuts_depth_the_c_decoder_manages_but_kopf_cannot_copy(levels: int) -> None:
    import copy

    value = jsonbounds.loads(deep_json_text(levels))
    copy.deepcopy(value)  # kopf deep-copies every object; 900 levels used to fail here
    depth = 0
    while isinstance(value, dict):
        value, depth = value["a"], depth + 1
    assert (depth, value) == (limits.MAX_DECODE_DEPTH, jsonbounds.CUT)
    assert jsonbounds.loads(deep_json_text(limits.MAX_DECODE_DEPTH)) == json.loads(
        deep_json_text(limits.MAX_DECODE_DEPTH)
    )


@pytest.mark.parametrize(
    "text",
    [
        "1",
        '"s"',
        "[]",
        "{}",
        ' { "k" : [ 1 , -2.5e3 , true , null , "\\"]}" ] , "e" : { } } ',
        '[[["x"], {"y": [{}]}], []]',
        '{"\\u00e9\\n": "\\ud83d\\ude00"}',
    ],
)
def test_bounded_decoder_agrees_with_json(text: str) -> None:
    assert jsonbounds.loads_bounded(text) == json.loads(text)


@pytest.mark.parametrize("text", ["[1,", '{"a" 1}', "[1] x", '{"a":1,}', "[1 2]"])
def test_bounded_decoder_rejects_malformed_json(text: str) -> None:
    with pytest.raises((ValueError, IndexError)):
        jsonbounds.loads_bounded(text)


def test_kopf_and_aiohttp_decode_through_the_bounded_decoder() -> None:
    import aiohttp
    from kopf._cogs.clients import api as kopf_api

    from shoal.kube import safejson

    safejson.install()
    assert safejson.installed()
    line = f'{{"type":"MODIFIED","object":{{"spec":{deep_json_text(3000)}}}}}'
    assert getattr(kopf_api, "json").loads(line)["type"] == "MODIFIED"  # noqa: B009
    decode = (aiohttp.ClientResponse.json.__kwdefaults__ or {})["loads"]
    assert decode(line)["type"] == "MODIFIED"


def test_shoal_validate_reports_a_3000_deep_manifest(tmp_path: Path) -> None:
    doc = {"apiVersion": "shoal.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": "d"}}
    path = tmp_path / "deep.json"
    body = json.dumps({**doc, "spec": {"nodes": [{"name": "n", "job": "j", "args": "X"}]}})
    path.write_text(body.replace('"X"', deep_json_text(3000)))
    with pytest.raises(InvalidWorkflow) as err:
        load_file(path)  # PyYAML's recursive composer raised RecursionError
    limit = limits.MAX_DECODE_DEPTH
    assert str(err.value) == f"{path}: nests deeper than {limit} levels (limit {limit})"


def test_shoal_validate_names_node_and_field_of_moderately_deep_args(tmp_path: Path) -> None:
    args = {"x": deep_object(50)}
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "d"},
        "spec": {"image": "w:1", "nodes": [{"name": "n", "job": "j", "args": args}]},
    }
    path = tmp_path / "wf.yaml"
    path.write_text(json.dumps(doc))  # JSON quotes `n`, which kubectl reads as false in YAML
    (manifest,) = load_file(path)
    with pytest.raises(InvalidWorkflow, match=r"node 'n': args: nests deeper than 32 levels"):
        compile_manifest(manifest)


def test_a_chain_of_the_maximum_number_of_nodes_compiles() -> None:
    # The cycle search recursed once per node of a chain.
    nodes = [{"name": "n0", "job": "j"}]
    nodes += [
        {"name": f"n{i}", "job": "j", "dependsOn": [f"n{i - 1}"]}
        for i in range(1, limits.MAX_NODES)
    ]
    wf = compile_workflow(WorkflowSpec.model_validate(spec_of(*nodes)), WorkflowMeta(name="wf"))
    assert wf.order[-1] == f"n{limits.MAX_NODES - 1}"


# --- expressions ---------------------------------------------------------------------------


def test_five_nested_all_in_when_is_refused_promptly_with_node_field_and_limit() -> None:
    # On the old code this compiled, and evaluating it took hours on the event loop.
    started = time.monotonic()
    spec = spec_of({"name": "a", "job": "j"}, {"name": "b", "job": "j", "when": nested_all(5)})
    (problem,) = problems_of(spec)
    assert time.monotonic() - started < 2
    assert problem.startswith("node 'b': when: bad expression: ")
    assert f"nest 5 deep (limit {limits.MAX_COMPREHENSION_NESTING})" in problem
    assert len(problem) < 400  # the expression is quoted shortened, not whole


def test_a_constant_for_each_of_nested_macros_is_refused_at_compile_time() -> None:
    started = time.monotonic()
    source = nested_all(4).replace("true", "[1]").replace(".all(", ".map(")
    node = {"name": "fan", "job": "j", "forEach": "${{ " + source + " }}", "itemArg": "i"}
    (problem,) = problems_of(spec_of(node))
    assert time.monotonic() - started < 2
    assert problem.startswith("node 'fan': forEach: bad expression:")
    assert f"(limit {limits.MAX_COMPREHENSION_NESTING})" in problem


def test_an_expression_longer_than_the_limit_is_refused() -> None:
    source = " || ".join(["true"] * 1200)
    assert len(source) > limits.MAX_EXPRESSION_LENGTH
    with pytest.raises(ExpressionError, match=rf"\(limit {limits.MAX_EXPRESSION_LENGTH}\)"):
        compile_expression(source)


def test_brackets_nested_past_the_limit_are_refused_before_parsing() -> None:
    depth = limits.MAX_EXPRESSION_NESTING + 1
    with pytest.raises(ExpressionError, match=rf"\(limit {limits.MAX_EXPRESSION_NESTING}\)"):
        compile_expression("(" * depth + "1" + ")" * depth)
    ok_depth = limits.MAX_EXPRESSION_NESTING
    assert compile_expression("(" * ok_depth + "1" + ")" * ok_depth).evaluate({}) == 1


def test_brackets_inside_string_literals_do_not_count() -> None:
    text = "'" + "(" * 100 + "' + \"[[[\" + 'it\\'s'"
    assert compile_expression(text).evaluate({}) == "(" * 100 + "[[[it's"


def test_two_nested_macros_are_allowed_and_give_cel_results() -> None:
    expr = compile_expression("params.xs.all(a, params.xs.exists(b, a + b == 3))")
    assert expr.evaluate({"params": {"xs": [1, 2]}}) is True
    assert expr.evaluate({"params": {"xs": [1, 5]}}) is False
    assert compile_expression("params.xs.map(x, x * 2)").evaluate({"params": {"xs": [1, 2]}}) == [
        2,
        4,
    ]


def test_a_missing_key_inside_an_iterating_expression_names_the_key() -> None:
    expr = compile_expression("params.xs.exists(x, x == 1) && params.nope == 1")
    with pytest.raises(ExpressionError, match="no such key 'nope'"):
        expr.evaluate({"params": {"xs": [1]}})


def test_an_expression_over_its_time_budget_is_stopped_and_the_next_one_runs() -> None:
    SANDBOX.start()  # start-up is not charged to the expression
    expr = compile_expression("params.xs.all(a, params.xs.all(b, a + b >= 0))")
    xs = list(range(20000))  # 400 million steps: minutes of work
    started = time.monotonic()
    with pytest.raises(ExpressionError) as err:
        expr.evaluate({"params": {"xs": xs}})
    elapsed = time.monotonic() - started
    budget = limits.EXPRESSION_TIMEOUT_SECONDS
    assert budget <= elapsed < budget + 5
    assert f"exceeded the time budget of {budget:g}s" in str(err.value)
    assert expr.evaluate({"params": {"xs": [1, 2]}}) is True


def test_when_over_budget_fails_its_node_only_and_the_workflow_goes_on() -> None:
    xs = list(range(20000))
    wf = workflow(
        {"name": "a"},
        {"name": "slow", "dependsOn": ["a"], "when": "params.xs.all(a, params.xs.all(b, b >= 0))"},
        {"name": "other", "dependsOn": ["a"]},
        parameters={"xs": xs},
    )
    sim = Simulator(wf, {("a", 0): ok()})
    state = sim.run()
    slow = state.nodes["slow"]
    assert slow.phase is NodePhase.FAILED
    assert slow.message.startswith("when: ")
    assert f"time budget of {limits.EXPRESSION_TIMEOUT_SECONDS:g}s" in slow.message
    assert state.nodes["other"].phase is NodePhase.SUCCEEDED


# --- admission -----------------------------------------------------------------------------


def _properties(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    for step in path:
        schema = schema["items"] if step == "[]" else schema["properties"][step]
    return schema


def test_the_crd_states_the_limits_of_the_limits_module() -> None:
    kind = next(k for k in crd.KINDS if k.name == "Workflow")
    spec = _properties(crd.openapi_schema(kind.model), "spec")
    node = _properties(spec, "nodes", "[]")
    assert _properties(spec, "nodes")["maxItems"] == limits.MAX_NODES
    assert _properties(spec, "parameters")["maxProperties"] == limits.MAX_PROPERTIES
    assert _properties(node, "when")["maxLength"] == limits.MAX_EXPRESSION_LENGTH
    assert _properties(node, "dependsOn")["maxItems"] == limits.MAX_DEPENDS_ON
    assert _properties(node, "command")["maxItems"] == limits.MAX_LIST_ITEMS
    assert _properties(node, "command", "[]")["maxLength"] == limits.MAX_TEXT_LENGTH
    assert _properties(node, "image")["maxLength"] == limits.MAX_STRING_LENGTH
    cron = next(k for k in crd.KINDS if k.name == "CronWorkflow")
    poll = _properties(crd.openapi_schema(cron.model), "spec", "poll")
    assert _properties(poll, "condition")["maxLength"] == limits.MAX_EXPRESSION_LENGTH


def test_a_for_each_expression_longer_than_the_limit_is_refused_by_the_model() -> None:
    node = {"name": "f", "job": "j", "itemArg": "i", "forEach": "x" * 5000}
    with pytest.raises(ValueError, match=str(limits.MAX_EXPRESSION_LENGTH)):
        WorkflowSpec.model_validate(spec_of(node))


def test_security_doc_states_the_limits() -> None:
    """Every constant of the limits module appears in docs/security.md with its value."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith(("`MAX_", "`EXPRESSION_", "`EVALUATOR_")):
            rows[cells[0].split("`")[1]] = cells[1]
    stated = {
        name: value
        for name, value in vars(limits).items()
        if name.isupper() and isinstance(value, int | float)
    }
    assert set(rows) == set(stated)
    for name, value in stated.items():
        assert float(rows[name]) == float(value), name


def test_a_3000_deep_cli_parameter_is_refused_not_a_crash() -> None:
    from shoal.cli.common import parse_params

    params = parse_params(["p=" + "[" * 3000 + "]" * 3000])  # json.loads raised RecursionError
    spec = spec_of({"name": "a", "job": "j"}, parameters={"p": 0})
    limit = limits.MAX_JSON_DEPTH
    assert problems_of(spec, params) == [
        f"parameters: nests deeper than {limit} levels (limit {limit})"
    ]
