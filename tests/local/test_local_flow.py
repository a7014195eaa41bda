"""`shoal run` runs the exit handler after the rest, with the run's outcome in its args."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.local.conftest import shoal_run

pytestmark = pytest.mark.local

Manifest = Callable[..., Path]


@pytest.mark.parametrize(
    ("work", "deadline", "status", "message"),
    [
        ("exit 3", "", "Failed", "Exit code 3"),
        ("sleep 60", "activeDeadlineSeconds: 1", "Failed", "activeDeadlineSeconds"),
        ("true", "", "Succeeded", None),
    ],
)
def test_the_exit_handler_sees_the_status_and_failures(
    manifest: Manifest,
    tmp_path: Path,
    work: str,
    deadline: str,
    status: str,
    message: str | None,
) -> None:
    seen = tmp_path / "seen.json"
    payload = '{"status": "${{ workflow.status }}", "failures": ${{ workflow.failures }}}'
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: exits}}
        spec:
          onExit: notify
          {deadline}
          nodes:
            - name: work
              command: [sh, -c, "{work}"]
            - name: after
              dependsOn: [work]
              command: ["true"]
            - name: notify
              command:
                - sh
                - -c
                - 'printf "%s" "$1" > "$2"'
                - notify
                - '{payload}'
                - "{seen}"
        """
    )
    result = shoal_run(path)

    assert result.status["phase"] == status
    assert result.node("notify")["phase"] == "Succeeded"
    got = json.loads(seen.read_text())
    assert got["status"] == status
    if message is None:
        assert got["failures"] == []
    else:
        [failure] = got["failures"]
        assert failure["node"] == "work"
        assert failure["phase"] == "Failed"
        assert message in failure["message"]
