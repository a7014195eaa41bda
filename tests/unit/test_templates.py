"""The template resolver (core/templates.py): what a reference expands to, and every way a
reference can be wrong, each reported with the node and field that caused it."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api.limits import MAX_TEMPLATE_DEPTH
from shoal.api.workflow import WorkflowSpec
from shoal.core.compiled import WorkflowMeta
from shoal.core.template_rewrite import rewrite_expression
from shoal.core.templates import Template, TemplateKey, TemplatesNeeded, resolve_spec
from shoal.core.validation import InvalidWorkflow, Problem, compile_workflow
from shoal.manifests import compile_manifest, load_text

ETL: dict[str, Any] = {
    "parameters": {"table": "users", "limit": 10},
    "nodes": [
        {"name": "extract", "command": ["echo", "${{ params.table }}"], "captureStdout": True},
        {
            "name": "load",
            "dependsOn": ["extract"],
            "command": ["echo", "${{ nodes.extract.outputs.result }}", "'params.table'"],
            "when": "params.limit > 0",
        },
    ],
}


def tmpl(name: str, spec: dict[str, Any], *, cluster: bool = False) -> Template:
    return Template(cluster, name, WorkflowSpec.model_validate(spec), version="7", uid="u")


def store(*templates: Template) -> dict[TemplateKey, Template]:
    return {t.key: t for t in templates}


def spec(nodes: list[dict[str, Any]], **extra: Any) -> WorkflowSpec:
    return WorkflowSpec.model_validate({"nodes": nodes, **extra})


def problems(workflow: WorkflowSpec, templates: dict[TemplateKey, Template]) -> list[Problem]:
    with pytest.raises(InvalidWorkflow) as caught:
        resolve_spec(workflow, templates, "wf.yaml")
    assert caught.value.source == "wf.yaml"
    return caught.value.problems


def by_name(resolved: WorkflowSpec) -> dict[str, dict[str, Any]]:
    return {n.name: n.dump() for n in resolved.nodes}


# -- what references become ------------------------------------------------------------


def test_a_sub_dag_is_renamed_wired_and_bound_to_its_parameters() -> None:
    workflow = spec(
        [
            {"name": "prep", "command": ["true"]},
            {
                "name": "etl",
                "templateRef": {"name": "etl"},
                "parameters": {"table": "${{ params.t }}"},
                "dependsOn": ["prep"],
            },
            {
                "name": "report",
                "dependsOn": ["etl"],
                "command": ["echo", "${{ nodes['etl-load'].phase }}"],
            },
        ],
        parameters={"t": "orders"},
    )
    resolved = resolve_spec(workflow, store(tmpl("etl", ETL)))
    nodes = by_name(resolved.spec)
    assert list(nodes) == ["prep", "etl-extract", "etl-load", "report"]
    assert nodes["etl-extract"]["dependsOn"] == [
        "prep"
    ]  # the root waits for what the ref waited for
    assert nodes["etl-extract"]["command"] == ["echo", "${{ (params.t) }}"]
    assert nodes["etl-load"]["dependsOn"] == ["etl-extract"]
    # Sibling renamed; the default `limit` inlined; string literals left as written.
    assert nodes["etl-load"]["command"] == [
        "echo",
        '${{ nodes["etl-extract"].outputs.result }}',
        "'params.table'",
    ]
    assert nodes["etl-load"]["when"] == "(10) > 0"
    assert nodes["report"]["dependsOn"] == ["etl-load"]  # dependsOn the ref: its leaves
    assert [t.name for t in resolved.templates] == ["etl"]
    compile_workflow(resolved.spec, WorkflowMeta(name="wf"))  # a plain spec that compiles


def test_one_node_reused_takes_the_references_own_fields() -> None:
    workflow = spec(
        [
            {
                "name": "users",
                "templateRef": {"name": "etl", "node": "extract"},
                "parameters": {"table": "users_v2"},
                "timeoutSeconds": 30,
                "when": "true",
            }
        ]
    )
    node = by_name(resolve_spec(workflow, store(tmpl("etl", ETL))).spec)["users"]
    assert node["command"] == ["echo", '${{ ("users_v2") }}']
    assert node["captureStdout"] is True
    assert node["timeoutSeconds"] == 30
    assert node["when"] == "true"


def test_workflow_template_ref_takes_the_dag_with_overridden_parameters_and_fields() -> None:
    workflow = WorkflowSpec.model_validate(
        {"workflowTemplateRef": {"name": "etl"}, "parameters": {"limit": 3}, "parallelism": 2}
    )
    resolved = resolve_spec(workflow, store(tmpl("etl", {**ETL, "parallelism": 9})))
    assert resolved.spec.parameters == {"table": "users", "limit": 3}
    assert resolved.spec.parallelism == 2
    assert [n.name for n in resolved.spec.nodes] == ["extract", "load"]
    assert resolved.spec.nodes[1].when == ETL["nodes"][1]["when"]  # still reads the run's params
    assert resolved.spec.workflow_template_ref is None


def test_nested_templates_pass_parameters_through() -> None:
    inner = tmpl(
        "inner",
        {
            "parameters": {"msg": "x"},
            "nodes": [{"name": "say", "command": ["echo", "${{ params.msg }}"]}],
        },
    )
    outer = tmpl(
        "outer",
        {
            "parameters": {"who": "a"},
            "nodes": [
                {
                    "name": "hi",
                    "templateRef": {"name": "inner"},
                    "parameters": {"msg": "hi ${{ params.who }}"},
                }
            ],
        },
    )
    workflow = spec(
        [{"name": "run", "templateRef": {"name": "outer"}, "parameters": {"who": "bob"}}]
    )
    nodes = by_name(resolve_spec(workflow, store(inner, outer)).spec)
    assert nodes["run-hi-say"]["command"] == ["echo", '${{ ("hi " + string(("bob"))) }}']


def test_cluster_and_namespaced_templates_of_one_name_are_distinct() -> None:
    local = tmpl("t", {"nodes": [{"name": "a", "command": ["echo", "local"]}]})
    shared = tmpl("t", {"nodes": [{"name": "a", "command": ["echo", "cluster"]}]}, cluster=True)
    workflow = spec(
        [{"name": "x", "templateRef": {"name": "t", "node": "a", "clusterScope": True}}]
    )
    assert by_name(resolve_spec(workflow, store(local, shared)).spec)["x"]["command"] == [
        "echo",
        "cluster",
    ]


def test_a_cron_runs_trigger_parameters_pass_without_declaration() -> None:
    workflow = WorkflowSpec.model_validate(
        {
            "workflowTemplateRef": {"name": "etl"},
            "parameters": {"scheduledTime": "2026-01-01T00:00:00Z"},
        }
    )
    assert resolve_spec(workflow, store(tmpl("etl", ETL))).spec.parameters["scheduledTime"]


def test_the_rewrite_leaves_string_literals_alone() -> None:
    rewrite = ({"x": "1"}, {"a": "r-a"})
    source = "'params.x' + \"nodes.a\" + string(params.x) + nodes.a.outputs.y + params['x']"
    assert rewrite_expression(source, rewrite) == (
        '\'params.x\' + "nodes.a" + string((1)) + nodes["r-a"].outputs.y + (1)'
    )


# -- every error, with node and field ----------------------------------------------------


def test_a_missing_template_is_named_with_a_suggestion() -> None:
    workflow = spec([{"name": "a", "templateRef": {"name": "etl-v2"}}])
    [problem] = problems(workflow, store(tmpl("etl-v1", ETL)))
    assert (problem.node, problem.field) == ("a", "templateRef.name")
    assert problem.message == "WorkflowTemplate 'etl-v2' not found (did you mean 'etl-v1'?)"


def test_a_missing_workflow_template_is_named() -> None:
    workflow = WorkflowSpec.model_validate(
        {"workflowTemplateRef": {"name": "gone", "clusterScope": True}}
    )
    [problem] = problems(workflow, {})
    assert problem.field == "spec.workflowTemplateRef.name"
    assert "ClusterWorkflowTemplate 'gone' not found" in problem.message


def test_every_bad_reference_is_reported_at_once() -> None:
    workflow = spec(
        [{"name": "a", "templateRef": {"name": "x"}}, {"name": "b", "templateRef": {"name": "y"}}]
    )
    assert [p.node for p in problems(workflow, {})] == ["a", "b"]


def test_a_missing_node_in_a_template_is_named() -> None:
    workflow = spec([{"name": "a", "templateRef": {"name": "etl", "node": "extrct"}}])
    [problem] = problems(workflow, store(tmpl("etl", ETL)))
    assert (problem.node, problem.field) == ("a", "templateRef.node")
    assert (
        problem.message == "WorkflowTemplate 'etl' has no node 'extrct' (did you mean 'extract'?)"
    )


def test_a_cycle_between_templates_is_named_as_a_path() -> None:
    a = tmpl("a", {"nodes": [{"name": "n", "templateRef": {"name": "b"}}]})
    b = tmpl("b", {"nodes": [{"name": "m", "templateRef": {"name": "a"}}]})
    [problem] = problems(spec([{"name": "top", "templateRef": {"name": "a"}}]), store(a, b))
    assert problem.node == "top"
    assert (
        "template cycle: WorkflowTemplate 'a' -> WorkflowTemplate 'b' -> WorkflowTemplate 'a'"
        in problem.message
    )
    assert problem.message.startswith("in WorkflowTemplate 'a': node 'n': in WorkflowTemplate 'b'")


def test_nesting_deeper_than_the_bound_is_refused() -> None:
    chain = [
        tmpl(f"t{i}", {"nodes": [{"name": "n", "templateRef": {"name": f"t{i + 1}"}}]})
        for i in range(MAX_TEMPLATE_DEPTH + 1)
    ]
    last = tmpl(f"t{MAX_TEMPLATE_DEPTH + 1}", {"nodes": [{"name": "n", "command": ["true"]}]})
    [problem] = problems(
        spec([{"name": "top", "templateRef": {"name": "t0"}}]), store(*chain, last)
    )
    assert f"templates nest deeper than {MAX_TEMPLATE_DEPTH} levels" in problem.message
    assert "MAX_TEMPLATE_DEPTH" in problem.message


def test_a_name_collision_after_expansion_is_refused() -> None:
    workflow = spec(
        [{"name": "etl", "templateRef": {"name": "etl"}}, {"name": "etl-load", "command": ["true"]}]
    )
    [problem] = problems(workflow, store(tmpl("etl", ETL)))
    assert (problem.node, problem.field) == ("etl-load", "name")
    assert "a second node 'etl-load' (written in the spec)" in problem.message


def test_an_undeclared_parameter_is_refused_with_a_suggestion() -> None:
    workflow = spec([{"name": "a", "templateRef": {"name": "etl"}, "parameters": {"tabel": "x"}}])
    [problem] = problems(workflow, store(tmpl("etl", ETL)))
    assert (problem.node, problem.field) == ("a", "parameters.tabel")
    assert (
        problem.message
        == "WorkflowTemplate 'etl' declares no parameter 'tabel' (did you mean 'table'?)"
    )
    whole = WorkflowSpec.model_validate(
        {"workflowTemplateRef": {"name": "etl"}, "parameters": {"lmit": 1}}
    )
    [problem] = problems(whole, store(tmpl("etl", ETL)))
    assert problem.field == "spec.parameters.lmit"


def test_a_whole_template_reference_refuses_node_fields_it_cannot_apply() -> None:
    workflow = spec([{"name": "a", "templateRef": {"name": "etl"}, "forEach": [1, 2]}])
    [problem] = problems(workflow, store(tmpl("etl", ETL)))
    assert (problem.node, problem.field) == ("a", "templateRef")
    assert problem.message.endswith("not forEach")


def test_a_template_with_an_exit_handler_is_not_a_sub_dag() -> None:
    with_exit = tmpl("t", {**ETL, "onExit": "extract", "nodes": [ETL["nodes"][0]]})
    [problem] = problems(spec([{"name": "a", "templateRef": {"name": "t"}}]), store(with_exit))
    assert "has an onExit node" in problem.message


def test_reusing_a_node_that_needs_its_siblings_is_refused() -> None:
    [problem] = problems(
        spec([{"name": "a", "templateRef": {"name": "etl", "node": "load"}}]),
        store(tmpl("etl", ETL)),
    )
    assert problem.field == "templateRef.node"
    assert "reuse the whole template" in problem.message


def test_reading_a_sub_dag_by_its_reference_name_suggests_its_nodes() -> None:
    workflow = spec(
        [
            {"name": "etl", "templateRef": {"name": "etl"}},
            {
                "name": "next",
                "dependsOn": ["etl"],
                "command": ["echo", "${{ nodes.etl.outputs.result }}"],
            },
        ]
    )
    [problem] = problems(workflow, store(tmpl("etl", ETL)))
    assert problem.node == "next"
    assert "read one of its nodes instead: nodes['etl-load']" in problem.message


def test_an_expanded_name_over_the_dns_label_limit_is_refused() -> None:
    long = "r" * 60
    [problem] = problems(
        spec([{"name": long, "templateRef": {"name": "etl"}}]), store(tmpl("etl", ETL))
    )
    assert (problem.node, problem.field) == (long, "name")
    assert "longer than 63 characters" in problem.message


def test_a_template_using_workflow_template_ref_is_refused() -> None:
    bad = tmpl("outer", {"workflowTemplateRef": {"name": "etl"}})
    [problem] = problems(
        spec([{"name": "a", "templateRef": {"name": "outer"}}]), store(bad, tmpl("etl", ETL))
    )
    assert "itself uses workflowTemplateRef" in problem.message


def test_compiling_an_unresolved_spec_is_refused() -> None:
    with pytest.raises(InvalidWorkflow, match="resolved before compiling"):
        compile_workflow(
            spec([{"name": "a", "templateRef": {"name": "etl"}}]), WorkflowMeta(name="x")
        )


def test_a_reference_without_templates_to_read_says_so() -> None:
    text = """
apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata: {name: w}
spec:
  workflowTemplateRef: {name: etl}
"""
    [manifest] = load_text(text, "w.yaml")
    with pytest.raises(TemplatesNeeded):
        compile_manifest(manifest)
    wf = compile_manifest(manifest, None, store(tmpl("etl", ETL)))
    assert wf.order == ("extract", "load")


def test_schema_refuses_nodes_and_a_workflow_template_ref_together() -> None:
    with pytest.raises(ValueError, match="set no `nodes`"):
        WorkflowSpec.model_validate(
            {"workflowTemplateRef": {"name": "t"}, "nodes": [{"name": "a", "image": "x"}]}
        )
    with pytest.raises(ValueError, match="or `workflowTemplateRef`"):
        WorkflowSpec.model_validate({})
    with pytest.raises(ValueError, match="set no `job`/`command`"):
        spec([{"name": "a", "job": "j", "templateRef": {"name": "t"}}])
