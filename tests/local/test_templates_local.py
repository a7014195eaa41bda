"""Templates on this machine: `shoal run`/`validate --templates`, `shoal template lint`,
each as a real `shoal` process (docs/templates.md)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.local.conftest import EXAMPLES, REPO, SHOAL, shoal_run

pytestmark = pytest.mark.local
TEMPLATES = EXAMPLES / "templates.yaml"

FROM_TEMPLATE = """
    apiVersion: shoal.dev/v1alpha1
    kind: Workflow
    metadata:
      name: from-template
    spec:
      workflowTemplateRef: {name: greeting}
      parameters: {who: templates}
"""


def shoal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHOAL, *args], capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )


def test_a_workflow_template_ref_runs_the_templates_dag_with_its_parameters(
    manifest: Callable[[str], Path],
) -> None:
    path = manifest(FROM_TEMPLATE)
    result = shoal_run(path, "--templates", str(TEMPLATES), "-p", "punctuation=?")
    assert result.status["phase"] == "Succeeded", result.stderr
    assert result.node("compose")["outputs"] == {"result": "hello, templates?"}
    assert result.node("shout")["outputs"] == {"result": "HELLO, TEMPLATES?"}


def test_a_folder_of_templates_is_read_too(manifest: Callable[[str], Path]) -> None:
    path = manifest(FROM_TEMPLATE)
    done = shoal("validate", "--templates", str(EXAMPLES), str(path))
    assert done.returncode == 0, done.stderr
    assert "Workflow from-template: valid (2 nodes)" in done.stdout


def test_a_missing_template_is_named_and_nothing_runs(manifest: Callable[[str], Path]) -> None:
    path = manifest(FROM_TEMPLATE)
    done = shoal("run", str(path))
    assert done.returncode == 2
    assert f"{path}:7:" in done.stderr  # the line of the reference
    assert "spec.workflowTemplateRef.name: WorkflowTemplate 'greeting' not found" in done.stderr
    assert "started" not in done.stdout


def test_a_template_does_not_run_by_itself() -> None:
    done = shoal("run", "--name", "greeting", str(TEMPLATES))
    assert done.returncode == 2
    assert "a WorkflowTemplate does not run by itself" in done.stderr


def test_lint_names_the_file_node_and_field_of_a_bad_reference(
    manifest: Callable[[str], Path],
) -> None:
    path = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: wrapper}
        spec:
          nodes:
            - name: inner
              templateRef: {name: greeting, node: composer}
        """,
        "wrapper.yaml",
    )
    done = shoal("template", "lint", str(path), "--templates", str(TEMPLATES))
    assert done.returncode == 2
    assert (
        f"{path}:8:37: node 'inner': templateRef.node: WorkflowTemplate 'greeting' has no "
        "node 'composer' (did you mean 'compose'?)"
    ) in done.stderr
    good = shoal("template", "lint", str(TEMPLATES))
    assert good.returncode == 0, good.stderr
    assert "WorkflowTemplate greeting: valid (2 nodes)" in good.stdout
