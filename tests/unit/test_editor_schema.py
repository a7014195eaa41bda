"""schemas/*.schema.json (for editors) accept every example and flag what validate flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = {
    "Workflow": REPO / "schemas" / "workflow.schema.json",
    "CronWorkflow": REPO / "schemas" / "cronworkflow.schema.json",
    "WorkflowTemplate": REPO / "schemas" / "workflowtemplate.schema.json",
    "ClusterWorkflowTemplate": REPO / "schemas" / "clusterworkflowtemplate.schema.json",
}


def validator(kind: str) -> Draft202012Validator:
    schema = json.loads(SCHEMAS[kind].read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


@pytest.mark.parametrize(("name", "doc"), documents(), ids=[n for n, _ in documents()])
def test_every_example_passes_the_editor_schema(name: str, doc: dict[str, Any]) -> None:
    errors = [e.message for e in validator(doc["kind"]).iter_errors(doc)]
    assert errors == [], name


def test_an_unknown_field_and_a_bad_value_are_flagged() -> None:
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "x"},
        "spec": {"nodes": [{"name": "a", "job": "j", "dependson": [], "retries": {"limit": -1}}]},
    }
    messages = [e.message for e in validator("Workflow").iter_errors(doc)]
    assert any("'dependson' was unexpected" in m for m in messages), messages
    assert any("{'limit': -1} is not valid" in m for m in messages), messages


def test_the_doc_shows_the_modeline_for_these_files() -> None:
    doc = (REPO / "docs" / "workflows.md").read_text()
    assert "# yaml-language-server: $schema=" in doc
    for path in SCHEMAS.values():
        assert path.name in doc
