"""Everything the operator writes into status is declared in the CRD.

The API server silently prunes undeclared fields from a structural schema, so a field
the operator renders but the CRD lacks would vanish without an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shoal.api.workflow import Node, NodePhase, WorkflowSpec
from shoal.core.compiled import WorkflowMeta
from shoal.core.state import RunState
from shoal.core.validation import compile_workflow
from shoal.kube.status import render_status

CRD = Path(__file__).resolve().parents[2] / "crds" / "workflows.shoal.dev.yaml"


def undeclared(value: Any, schema: dict[str, Any], path: str = "status") -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return []
    missing: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, inner in value.items():
            if props is not None and key in props:
                missing += undeclared(inner, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                missing += undeclared(inner, extra, f"{path}.{key}")
            else:
                missing.append(f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for inner in value:
            missing += undeclared(inner, schema["items"], f"{path}[]")
    return missing


def test_rendered_status_fields_are_all_in_the_crd() -> None:
    spec = WorkflowSpec(
        nodes=[
            Node(name="plain", job="j"),
            Node(name="fan", job="j", for_each=[1, 2, 3], item_arg="x", depends_on=["plain"]),
        ]
    )
    wf = compile_workflow(spec, WorkflowMeta(name="wf", uid="u"))
    state = RunState.new(list(wf.order))
    state.started_at, state.finished_at, state.message = 1.0, 9.0, "done"
    plain, fan = state.nodes["plain"], state.nodes["fan"]
    plain.phase, plain.attempts, plain.exit_code, plain.progress = NodePhase.RUNNING, 2, 1, 50.0
    plain.message, plain.started_at = "m", 1.0
    plain.outputs = {"big": "x" * 100_000}  # rendered as outputsOmitted
    fan.phase, fan.items, fan.total, fan.next_index = NodePhase.FAILED, [1, 2, 3], 3, 3
    fan.failed, fan.succeeded, fan.failures = 1, 2, [(1, "boom")]
    fan.outputs, fan.finished_at = {"n": [1, None, 3]}, 9.0
    status = render_status(wf, state)
    assert "outputsOmitted" in status["nodes"]["plain"]
    assert "failedItems" in status["nodes"]["fan"]
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert undeclared(status, schema["properties"]["status"]) == []
