"""Manifest validation: every problem names the file, the node and the field, all at once.

Manifests go through the same path as `shoal validate` (`load_file` + `compile_manifest`),
so the messages asserted here are exactly what a user reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoal.api.workflow import RunPolicy, WorkflowSpec
from shoal.core.compiled import WorkflowMeta
from shoal.core.validation import InvalidWorkflow, Problem, compile_workflow, find_cycle
from shoal.manifests import compile_manifest, load_file, parse_document


def workflow_doc(*nodes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "wf"},
        "spec": {"image": "worker:1", **spec, "nodes": list(nodes)},
    }


def cron_doc(workflow_spec: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", **spec, "workflowSpec": workflow_spec},
    }


class Files:
    """Writes manifests under a temporary directory and validates them like `shoal validate`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, doc: Any, name: str = "wf.yaml") -> Path:
        path = self.root / name
        text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    def compile(self, doc: Any, params: dict[str, Any] | None = None, name: str = "wf.yaml") -> Any:
        path = self.write(doc, name)
        return [compile_manifest(m, params) for m in load_file(path)]

    def errors(
        self, doc: Any, params: dict[str, Any] | None = None, name: str = "wf.yaml"
    ) -> InvalidWorkflow:
        with pytest.raises(InvalidWorkflow) as info:
            self.compile(doc, params, name)
        assert info.value.source == str(self.root / name)
        return info.value

    def lines(self, doc: Any, params: dict[str, Any] | None = None) -> list[str]:
        """The error's lines with the file path shortened to `wf.yaml`."""
        err = self.errors(doc, params)
        prefix = re.compile(re.escape(str(self.root / "wf.yaml")) + r"(:\d+:\d+)?: ")
        lines = str(err).splitlines()
        assert all(prefix.match(line) for line in lines), lines
        return [prefix.sub("", line, count=1) for line in lines]

    def one(self, doc: Any, params: dict[str, Any] | None = None) -> str:
        [line] = self.lines(doc, params)
        return line


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


# --- a valid manifest ---------------------------------------------------------------------


def test_a_valid_manifest_compiles_with_defaults_merged(files: Files) -> None:
    doc = workflow_doc(
        {"name": "markets", "job": "market-finder", "args": {"region": "${{ params.region }}"}},
        {"name": "data-proxy", "job": "data-proxy", "image": "other:2"},
        {
            "name": "integration",
            "job": "integration",
            "dependsOn": ["markets", "data-proxy"],
            "forEach": "${{ nodes.markets.outputs.market_ids }}",
            "itemArg": "market",
            "parallelism": 5,
            "retries": {"limit": 2, "backoffSeconds": 10},
        },
        {
            "name": "publish",
            "job": "publish",
            "dependsOn": ["integration"],
            "when": "nodes.integration.outputs.count.size() > 0 "
            '&& nodes["data-proxy"].phase == "Succeeded"',
        },
        {
            "name": "notify",
            "image": "curlimages/curl:8.10.1",
            "command": ["sh", "-c", "echo done"],
            "dependsOn": ["publish"],
            "runPolicy": "always",
        },
        parameters={"region": "eu-west"},
        parallelism=20,
        activeDeadlineSeconds=3600,
        defaults={"timeoutSeconds": 600, "retries": {"limit": 1}},
    )
    [wf] = files.compile(doc, {"region": "us-east"})
    assert wf.order == ("markets", "data-proxy", "integration", "publish", "notify")
    assert wf.params == {"region": "us-east"}
    assert (wf.parallelism, wf.active_deadline_seconds) == (20, 3600)
    assert wf.meta.name == "wf"
    integration = wf.nodes["integration"]
    assert integration.deps == ("markets", "data-proxy")
    assert integration.fan_out
    assert (integration.parallelism, integration.item_arg, integration.retries.limit) == (
        5,
        "market",
        2,
    )
    assert integration.timeout_seconds == 600
    assert wf.nodes["publish"].ancestors == {"markets", "data-proxy", "integration"}
    assert wf.nodes["markets"].retries.limit == 1  # from defaults
    assert wf.nodes["markets"].image == "worker:1"
    assert wf.nodes["data-proxy"].image == "other:2"
    assert wf.nodes["notify"].run_policy is RunPolicy.ALWAYS


def test_a_cron_workflow_spec_compiles_and_sees_scheduled_time(files: Files) -> None:
    doc = cron_doc(
        {
            "image": "worker:1",
            "parameters": {"region": "eu"},
            "nodes": [{"name": "a", "job": "a", "args": {"t": "${{ params.scheduledTime }}"}}],
        },
        timezone="Europe/Paris",
        parameters={"region": "us"},
    )
    [wf] = files.compile(doc)
    assert wf.params == {"region": "us", "scheduledTime": ""}
    assert wf.meta.name == "nightly"


def test_every_document_of_a_file_is_read(files: Files) -> None:
    one = yaml.safe_dump(workflow_doc({"name": "a", "job": "a"}))
    two = yaml.safe_dump(workflow_doc({"name": "b", "job": "b"}))
    compiled = files.compile(f"{one}---\n{two}")
    assert [wf.order for wf in compiled] == [("a",), ("b",)]


# --- the DAG ------------------------------------------------------------------------------


def test_unknown_dependency_suggests_the_closest_name(files: Files) -> None:
    doc = workflow_doc(
        {"name": "data-proxy", "job": "j"}, {"name": "b", "job": "j", "dependsOn": ["data-proxi"]}
    )
    err = files.errors(doc)
    assert err.problems == [
        Problem("unknown dependency 'data-proxi' (did you mean 'data-proxy'?)", "b", "dependsOn")
    ]
    # The line and column are those of the `dependsOn` key of node 'b' in the file.
    assert str(err) == (
        f"{err.source}:12:5: node 'b': dependsOn: unknown dependency 'data-proxi' "
        "(did you mean 'data-proxy'?)"
    )


def test_unknown_dependency_without_a_close_name(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j"}, {"name": "b", "job": "j", "dependsOn": ["zzz"]})
    assert files.one(doc) == "node 'b': dependsOn: unknown dependency 'zzz'"


def test_self_dependency(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "dependsOn": ["a"]})
    assert files.one(doc) == "node 'a': dependsOn: depends on itself"


def test_a_dependency_listed_twice(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j"}, {"name": "b", "job": "j", "dependsOn": ["a", "a"]}
    )
    assert files.one(doc) == "node 'b': dependsOn: lists 'a' twice"


def test_duplicate_node_name(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j"}, {"name": "b", "job": "j"}, {"name": "a", "job": "k"}
    )
    assert files.one(doc) == "node 'a': name: duplicate node name"


def test_a_cycle_is_reported_with_its_path(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j", "dependsOn": ["b"]},
        {"name": "b", "job": "j", "dependsOn": ["c"]},
        {"name": "c", "job": "j", "dependsOn": ["a"]},
    )
    assert files.one(doc) == "node 'a': dependsOn: dependency cycle: a -> b -> c -> a"


def test_a_cycle_away_from_the_first_node_and_other_problems(files: Files) -> None:
    doc = workflow_doc(
        {"name": "start", "job": "j"},
        {"name": "p", "job": "j", "dependsOn": ["start", "q"]},
        {"name": "q", "job": "j", "dependsOn": ["p"]},
        {"name": "r", "job": "j", "dependsOn": ["zz"]},
    )
    assert files.lines(doc) == [
        "node 'r': dependsOn: unknown dependency 'zz'",
        "node 'p': dependsOn: dependency cycle: p -> q -> p",
    ]


def test_find_cycle_returns_a_closed_path_or_none() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None
    cycle = find_cycle({"x": [], "a": ["x", "b"], "b": ["c"], "c": ["a"]})
    assert cycle == ["a", "b", "c", "a"]


# --- expressions --------------------------------------------------------------------------


def test_bad_cel_syntax_names_node_and_field(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "when": "params.x >"}, parameters={"x": 1})
    err = files.errors(doc)
    [problem] = err.problems
    assert (problem.node, problem.field) == ("a", "when")
    assert problem.message.startswith("bad expression: Failed to parse expression 'params.x >'")
    assert "Syntax error" in problem.message
    assert "\n" not in problem.message


def test_an_unknown_variable_hints_at_index_syntax_for_hyphenated_nodes(files: Files) -> None:
    doc = workflow_doc(
        {"name": "data-proxy", "job": "j"},
        {
            "name": "b",
            "job": "j",
            "dependsOn": ["data-proxy"],
            "when": "nodes.data-proxy.outputs.n > 0",
        },
    )
    assert files.one(doc) == (
        "node 'b': when: bad expression: 'nodes.data-proxy.outputs.n > 0': `nodes.data-proxy` "
        "reads as a subtraction, since `-` is minus in CEL; write nodes['data-proxy'] or "
        "nodes.data_proxy"
    )


def test_an_unknown_variable(files: Files) -> None:
    doc = workflow_doc({"name": "b", "job": "j", "args": {"x": "${{ foo.bar }}"}})
    assert files.one(doc) == (
        "node 'b': args: bad expression: 'foo.bar': unknown name 'foo'; "
        "expressions can use item, itemIndex, nodes, params, workflow"
    )


def test_the_index_form_for_hyphenated_nodes_is_accepted(files: Files) -> None:
    doc = workflow_doc(
        {"name": "data-proxy", "job": "j"},
        {
            "name": "b",
            "job": "j",
            "dependsOn": ["data-proxy"],
            "when": 'nodes["data-proxy"].outputs.n > 0',
        },
    )
    [wf] = files.compile(doc)
    assert wf.nodes["b"].when is not None
    assert wf.nodes["b"].when.node_refs == {"data-proxy"}


def test_a_reference_to_a_node_that_is_not_an_ancestor(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j"},
        {"name": "b", "job": "j", "args": {"x": "${{ nodes.a.outputs.y }}"}},
    )
    assert files.one(doc) == (
        "node 'b': args: refers to nodes.a, which is not among its dependencies "
        "(add 'a' to dependsOn)"
    )


def test_a_reference_to_an_indirect_ancestor_is_fine(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j"},
        {"name": "b", "job": "j", "dependsOn": ["a"]},
        {"name": "c", "job": "j", "dependsOn": ["b"], "args": {"x": "${{ nodes.a.outputs.y }}"}},
    )
    [wf] = files.compile(doc)
    assert wf.nodes["c"].ancestors == {"a", "b"}


def test_a_reference_to_an_unknown_node_suggests_a_name(files: Files) -> None:
    doc = workflow_doc(
        {"name": "markets", "job": "j"},
        {
            "name": "b",
            "job": "j",
            "dependsOn": ["markets"],
            "args": {"x": "${{ nodes.markts.outputs.y }}"},
        },
    )
    assert (
        files.one(doc)
        == "node 'b': args: refers to unknown node 'markts' (did you mean 'markets'?)"
    )


def test_a_reference_to_its_own_node(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "when": 'nodes.a.phase == "Running"'})
    assert files.one(doc) == "node 'a': when: refers to its own node; use item/itemIndex or args"


def test_env_templates_are_checked_too(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j", "env": [{"name": "X", "value": "${{ nodes.b.outputs }}"}]},
        {"name": "b", "job": "j"},
    )
    assert files.one(doc) == (
        "node 'a': env.X: refers to nodes.b, which is not among its dependencies "
        "(add 'b' to dependsOn)"
    )


def test_an_unclosed_template(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j", "args": {"x": "a ${{ params.q"}}, parameters={"q": 1}
    )
    assert files.one(doc) == "node 'a': args: bad expression: unclosed template in 'a ${{ params.q'"


# --- parameters ---------------------------------------------------------------------------


def test_an_undeclared_parameter_in_an_expression(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j", "args": {"x": "${{ params.regoin }}"}},
        parameters={"region": "eu"},
    )
    assert files.one(doc) == (
        "node 'a': args: refers to params.regoin, which is not declared in spec.parameters "
        "(did you mean 'region'?)"
    )


def test_an_unknown_command_line_parameter(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j"}, parameters={"region": "eu", "tier": 1})
    assert files.one(doc, {"regoin": "us"}) == (
        "parameters: unknown parameter 'regoin' (did you mean 'region'?); declared: region, tier"
    )


def test_a_command_line_parameter_when_none_is_declared(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j"})
    assert files.one(doc, {"x": 1}) == "parameters: unknown parameter 'x'; declared: none"


def test_given_parameters_override_declared_defaults() -> None:
    spec = WorkflowSpec.model_validate(
        {"image": "i", "parameters": {"n": 1, "s": "x"}, "nodes": [{"name": "a", "job": "j"}]}
    )
    compiled = compile_workflow(spec, WorkflowMeta("wf"), {"n": [1, 2]})
    assert compiled.params == {"n": [1, 2], "s": "x"}
    assert spec.parameters == {"n": 1, "s": "x"}  # the spec itself is left alone


# --- fan-outs -----------------------------------------------------------------------------


def test_item_outside_a_fan_out(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "args": {"x": "${{ item }}"}})
    assert files.one(doc) == (
        "node 'a': args: uses item/itemIndex outside a fan-out; only a fan-out's args see them"
    )


@pytest.mark.parametrize(
    ("field", "value"), [("when", "itemIndex > 0"), ("forEach", "${{ [item] }}")]
)
def test_item_in_when_or_for_each(files: Files, field: str, value: str) -> None:
    node: dict[str, Any] = {"name": "a", "job": "j", "forEach": [1], "itemArg": "i", field: value}
    assert files.one(workflow_doc(node)) == (
        f"node 'a': {field}: uses item/itemIndex in {field}; only a fan-out's args see them"
    )


def test_a_fan_out_job_that_never_passes_its_item(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "forEach": [1, 2], "args": {"x": 1}})
    assert files.one(doc) == (
        "node 'a': forEach: the fan-out never passes its item to the job: "
        "set itemArg or use ${{ item }} in args"
    )


def test_a_fan_out_job_may_pass_its_item_through_a_template(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j", "forEach": [1, 2], "args": {"x": "id-${{ itemIndex }}"}}
    )
    [wf] = files.compile(doc)
    assert wf.nodes["a"].fan_out


def test_item_arg_also_given_in_args(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "forEach": [1], "itemArg": "i", "args": {"i": 2}})
    assert files.one(doc) == "node 'a': itemArg: 'i' is also given in args"


def test_item_arg_on_a_command_node(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "image": "busybox", "command": ["echo"], "forEach": [1], "itemArg": "i"}
    )
    assert files.one(doc) == (
        "node 'a': itemArg: names an argument of a `job`; a command gets its item through "
        "${{ item }} in command or args"
    )


def test_an_empty_literal_for_each(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "forEach": [], "itemArg": "i"})
    assert files.one(doc) == "node 'a': forEach: is an empty list: the node would never run a pod"


def test_a_constant_empty_for_each_expression(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "forEach": "${{ [] }}", "itemArg": "i"})
    assert files.one(doc) == "node 'a': forEach: is an empty list: the node would never run a pod"


@pytest.mark.parametrize(
    ("expr", "type_name"), [("3", "int"), ("'abc'", "str"), ("{'a': 1}", "dict")]
)
def test_a_constant_non_list_for_each(files: Files, expr: str, type_name: str) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "forEach": f"${{{{ {expr} }}}}", "itemArg": "i"})
    assert files.one(doc) == f"node 'a': forEach: must yield a list, got {type_name}"


def test_a_constant_for_each_that_cannot_be_evaluated(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "forEach": "${{ [1][5] }}", "itemArg": "i"})
    line = files.one(doc)
    assert line.startswith("node 'a': forEach: cannot be evaluated: '[1][5]': ")


def test_a_literal_for_each_with_templates_is_checked(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "forEach": ["${{ params.q }}"], "itemArg": "i"})
    assert files.one(doc) == (
        "node 'a': forEach: refers to params.q, which is not declared in spec.parameters"
    )


# --- the shape of a node (schema errors, located by node name) ----------------------------


def test_job_and_command_both_set(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "command": ["echo"]})
    assert files.one(doc) == "node 'a': node: set either `job` or `command`, not both"


def test_neither_job_nor_command(files: Files) -> None:
    doc = workflow_doc({"name": "a"})
    assert files.one(doc) == (
        "node 'a': node: set `job` (a registered job), `command`/`image` (a container), "
        "`suspend`, `workflow` or `templateRef`"
    )


def test_job_args_given_as_a_list(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j", "args": ["--x"]})
    assert (
        files.one(doc) == "node 'a': node: `args` of a `job` node is an object of named arguments"
    )


def test_command_args_given_as_a_mapping(files: Files) -> None:
    doc = workflow_doc({"name": "a", "command": ["echo"], "args": {"x": 1}})
    assert files.one(doc) == "node 'a': node: `args` of a `command` node is a list of strings"


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"name": "a", "job": "j", "itemArg": "i"}, "`itemArg` needs `forEach` or `withSequence`"),
        (
            {"name": "a", "job": "j", "parallelism": 2},
            "`parallelism` on a node limits fan-out items; it needs `forEach` or `withSequence`",
        ),
    ],
)
def test_fan_out_settings_without_a_fan_out(
    files: Files, node: dict[str, Any], message: str
) -> None:
    assert files.one(workflow_doc(node)) == f"node 'a': node: {message}"


@pytest.mark.parametrize("name", ["Bad", "bad_name", "-bad", "bad-"])
def test_a_bad_node_name(name: str) -> None:
    with pytest.raises(InvalidWorkflow) as info:
        parse_document(workflow_doc({"name": name, "job": "j"}), "inline.yaml")
    assert str(info.value) == (
        f"inline.yaml: node {name!r}: name: must be lowercase letters, digits or '-', "
        "starting and ending with a letter or digit (for example 'load-data')"
    )


def test_an_unknown_field_is_located_by_node_name_not_index(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j"}, {"name": "publish", "job": "j", "dependOn": ["a"]}
    )
    err = files.errors(doc)
    assert err.problems == [
        Problem("unknown field (did you mean 'dependsOn'?)", "publish", "dependOn")
    ]
    assert str(err) == (
        f"{err.source}:12:5: node 'publish': dependOn: unknown field (did you mean 'dependsOn'?)"
    )


def test_a_nested_field_error_is_located_by_node_name(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j"}, {"name": "publish", "job": "j", "retries": {"limit": -1}}
    )
    assert files.one(doc) == (
        "node 'publish': retries.limit: Input should be greater than or equal to 0"
    )


def test_a_node_without_a_name_is_located_by_position(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j"}, {"job": "j"})
    assert files.one(doc) == "node '#2': name: Field required"


def test_spec_level_schema_errors_name_the_field(files: Files) -> None:
    doc = workflow_doc({"name": "a", "job": "j"}, parallelism=0)
    assert files.one(doc) == "spec.parallelism: Input should be greater than or equal to 1"


# --- the file and the document ------------------------------------------------------------


def test_a_yaml_syntax_error_names_the_file_and_line(files: Files) -> None:
    err = files.errors("kind: Workflow\nspec:\n  nodes:\n  - {name: a, job: j\n")
    [problem] = err.problems
    assert (problem.line, problem.column) == (5, 1)
    assert str(err).startswith(f"{err.source}:5:1: not valid YAML: ")
    assert "<unicode string>" not in str(err)


def test_an_unknown_kind(files: Files) -> None:
    doc = {"apiVersion": "shoal.dev/v1alpha1", "kind": "Flow", "spec": {}}
    assert (
        files.one(doc) == "kind: unknown kind 'Flow'; expected one of Workflow, CronWorkflow, "
        "WorkflowTemplate, ClusterWorkflowTemplate"
    )


def test_a_document_that_is_not_a_mapping(files: Files) -> None:
    assert files.one("- a\n- b\n") == "a manifest must be a mapping"


def test_an_empty_file(files: Files) -> None:
    assert files.one("# nothing here\n") == "no manifest in file"


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidWorkflow) as info:
        load_file(tmp_path / "missing.yaml")
    assert str(info.value) == f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory"


# --- CronWorkflow -------------------------------------------------------------------------


def test_a_bad_cron_expression(files: Files) -> None:
    doc = cron_doc({"image": "i", "nodes": [{"name": "a", "job": "j"}]}, schedule="61 * * * *")
    assert files.one(doc) == "spec.schedule: not a valid cron expression: '61 * * * *'"


def test_a_bad_cron_expression_in_a_list(files: Files) -> None:
    doc = cron_doc(
        {"image": "i", "nodes": [{"name": "a", "job": "j"}]}, schedule=["0 * * * *", "x * * * *"]
    )
    assert files.one(doc) == "spec.schedule: not a valid cron expression: 'x * * * *'"


def test_a_bad_time_zone(files: Files) -> None:
    doc = cron_doc({"image": "i", "nodes": [{"name": "a", "job": "j"}]}, timezone="Mars/Olympus")
    assert files.one(doc) == "spec.timezone: unknown IANA time zone 'Mars/Olympus'"


def test_a_cron_workflow_needs_a_trigger(files: Files) -> None:
    doc = cron_doc({"image": "i", "nodes": [{"name": "a", "job": "j"}]}, schedule=None)
    assert files.one(doc) == "spec: set at least one trigger: `schedule`, `poll` or `after`"


def test_a_cron_workflow_node_error_is_located_by_node_name(files: Files) -> None:
    spec = {
        "image": "i",
        "nodes": [{"name": "a", "job": "j"}, {"name": "pub", "job": "j", "dependOn": ["a"]}],
    }
    assert files.one(cron_doc(spec)) == (
        "node 'pub': dependOn: unknown field (did you mean 'dependsOn'?)"
    )


def test_a_cron_workflow_spec_is_validated_like_a_workflow(files: Files) -> None:
    spec = {"image": "i", "nodes": [{"name": "a", "job": "j", "when": "params.nope"}]}
    assert files.one(cron_doc(spec)) == (
        "node 'a': when: refers to params.nope, which is not declared in spec.parameters"
    )


# --- everything at once -------------------------------------------------------------------


def test_every_problem_of_a_manifest_is_reported_at_once(files: Files) -> None:
    doc = workflow_doc(
        {"name": "a", "job": "j", "dependsOn": ["zz"]},
        {"name": "b", "job": "j", "when": "params.q"},
        {"name": "c", "job": "j", "forEach": [1]},
        {
            "name": "d",
            "job": "j",
            "dependsOn": ["a"],
            "args": {"x": "${{ nodes.b.outputs.y }}", "y": "${{ item }}"},
        },
    )
    err = files.errors(doc, {"extra": 1})
    assert [(p.node, p.field) for p in err.problems] == [
        (None, "parameters"),
        ("a", "dependsOn"),
        ("b", "when"),
        ("c", "forEach"),
        ("d", "args"),
        ("d", "args"),
    ]
    assert files.lines(doc, {"extra": 1}) == [
        "parameters: unknown parameter 'extra'; declared: none",
        "node 'a': dependsOn: unknown dependency 'zz'",
        "node 'b': when: refers to params.q, which is not declared in spec.parameters",
        "node 'c': forEach: the fan-out never passes its item to the job: "
        "set itemArg or use ${{ item }} in args",
        "node 'd': args: refers to nodes.b, which is not among its dependencies "
        "(add 'b' to dependsOn)",
        "node 'd': args: uses item/itemIndex outside a fan-out; only a fan-out's args see them",
    ]


def test_every_schema_problem_is_reported_at_once(files: Files) -> None:
    doc = workflow_doc(
        {"name": "Bad", "job": "j"},
        {"name": "b", "job": "j", "dependOn": ["a"]},
        {"name": "c", "job": "j", "retries": {"limit": "many"}},
    )
    assert [(p.node, p.field) for p in files.errors(doc).problems] == [
        ("Bad", "name"),
        ("b", "dependOn"),
        ("c", "retries.limit"),
    ]
