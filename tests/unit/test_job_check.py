"""`shoal.job_check`: what validation learns from the job code and the parameters, named
at file:line:column with the node and field a user has to fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shoal.core.validation import InvalidWorkflow
from shoal.job_check import check_manifest, for_each_problems
from shoal.manifests import Manifest, compile_manifest, load_text
from shoal_worker import Context
from shoal_worker.registry import UnknownJobError

MANIFEST = """\
apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata: {{name: checked}}
spec:
  parameters: {{ids: {ids}}}
  nodes:
{nodes}"""


def greet(ctx: Context, name: str, times: int = 1) -> None:
    """A job with a context, a required and an optional argument."""


def anything(**kwargs: Any) -> None:
    """A job that takes every argument."""


JOBS: dict[str, Callable[..., Any]] = {"greet": greet, "anything": anything}


def lookup(name: str) -> Callable[..., Any]:
    if name not in JOBS:
        raise UnknownJobError(name, JOBS)
    return JOBS[name]


def manifest(nodes: str, ids: str = "[1, 2]") -> Manifest:
    return load_text(MANIFEST.format(nodes=nodes, ids=ids), "wf.yaml")[0]


def described(nodes: str, ids: str = "[1, 2]", **params: Any) -> list[str]:
    found = manifest(nodes, ids)
    try:
        check_manifest(found, compile_manifest(found, params), ["jobs"], lookup)
    except InvalidWorkflow as err:
        return [p.describe(err.source) for p in err.problems]
    return []


def test_a_fitting_node_has_no_problem() -> None:
    assert described("    - {name: a, job: greet, args: {name: x, times: 2}}\n") == []


def test_an_unknown_job_suggests_the_registered_name_with_its_position() -> None:
    found = described("    - {name: a, job: gret, args: {name: x}}\n")
    assert found == [
        "wf.yaml:7:17: node 'a': job: unknown job 'gret'; did you mean 'greet'? "
        "(jobs imported: anything, greet)"
    ]


def test_an_unknown_argument_is_named_at_its_key_with_the_closest_parameter() -> None:
    found = described("    - {name: a, job: greet, args: {name: x, tims: 2}}\n")
    assert len(found) == 1
    assert found[0].startswith("wf.yaml:7:45: node 'a': args.tims: unknown argument")
    assert "did you mean 'times'?" in found[0]


def test_a_missing_required_argument_is_named_at_the_job() -> None:
    found = described("    - {name: a, job: greet, args: {times: 2}}\n")
    assert found == ["wf.yaml:7:17: node 'a': job: missing required argument 'name'"]


def test_a_literal_of_the_wrong_type_uses_the_workers_own_message() -> None:
    found = described("    - {name: a, job: greet, args: {name: x, times: many}}\n")
    assert len(found) == 1
    assert "args.times: argument 'times': expected int, got str" in found[0]


def test_a_template_is_checked_for_its_name_only() -> None:
    nodes = "    - {name: a, job: greet, args: {name: x, times: '${{ params.ids[0] }}'}}\n"
    assert described(nodes) == []


def test_item_arg_counts_as_given_and_literal_items_are_type_checked() -> None:
    assert described("    - {name: a, job: greet, forEach: [x, z], itemArg: name}\n") == []
    found = described("    - {name: a, job: greet, forEach: [x, 3], itemArg: name}\n")
    assert len(found) == 1
    assert "node 'a': forEach.1: item 1: argument 'name': expected str, got int" in found[0]


def test_keyword_catch_all_accepts_any_argument() -> None:
    assert described("    - {name: a, job: anything, args: {whatever: 1}}\n") == []


def test_command_nodes_are_not_job_checked() -> None:
    nodes = "    - {name: a, image: busybox, command: [echo, hi]}\n"
    assert described(nodes) == []


def test_for_each_over_a_parameter_whose_default_is_not_a_list() -> None:
    nodes = "    - {name: a, job: greet, forEach: '${{ params.ids }}', itemArg: name}\n"
    found = described(nodes, ids="3")
    assert found == ["wf.yaml:7:29: node 'a': forEach: params.ids must yield a list, got int (3)"]
    # The value given on the command line is what counts, not the default.
    wf = compile_manifest(manifest(nodes, ids="3"), {"ids": ["x"]})
    assert for_each_problems(wf) == []


def test_for_each_over_node_outputs_is_left_to_run_time() -> None:
    nodes = (
        "    - {name: a, job: anything}\n"
        "    - {name: b, job: greet, dependsOn: [a], forEach: '${{ nodes.a.outputs.ids }}',"
        " itemArg: name}\n"
    )
    assert described(nodes, ids="3") == []


def test_check_manifest_without_imports_checks_for_each_only() -> None:
    found = manifest(
        "    - {name: a, job: nope, forEach: '${{ params.ids }}', itemArg: x}\n", ids="{a: 1}"
    )
    with pytest.raises(InvalidWorkflow) as err:
        check_manifest(found, compile_manifest(found), [])
    assert [p.field for p in err.value.problems] == ["forEach"]


def positional(name: str, /) -> None:
    """A job the worker cannot call: its argument cannot be passed by keyword."""


def test_a_positional_only_parameter_is_refused_as_the_worker_refuses_it() -> None:
    JOBS["positional"] = positional
    try:
        found = described("    - {name: a, job: positional, args: {}}\n")
    finally:
        del JOBS["positional"]
    assert found == [
        "wf.yaml:7:17: node 'a': job: parameter 'name' is positional-only; "
        "job arguments are passed by keyword"
    ]


def test_admission_refuses_a_for_each_over_a_non_list_parameter_as_validate_does() -> None:
    from shoal.admission_check import problems_of

    found = manifest(
        "    - {name: a, job: greet, forEach: '${{ params.ids }}', itemArg: name}\n", "3"
    )
    assert found.document is not None
    assert problems_of(found.document.raw) == (
        "node 'a': forEach: params.ids must yield a list, got int (3)",
    )
