"""`captureStdout` through `shoal run`: a command's stdout as `outputs.result`, downstream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shoal.api.limits import MAX_RESULT_BYTES
from tests.local.conftest import shoal_run


def test_stdout_becomes_a_result_that_a_later_node_reads(
    manifest: Callable[[str], Path],
) -> None:
    path = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: capture}
        spec:
          nodes:
            - name: count
              command: [sh, -c, 'echo "3 regions"; echo noise >&2; echo done']
              captureStdout: true
            - name: report
              dependsOn: [count]
              command: [echo, 'got ${{ nodes.count.outputs.result }}']
              captureStdout: true
            - name: quiet
              command: [echo, "only a log line"]
        """
    )
    result = shoal_run(path)
    assert result.code == 0, result.stderr
    assert result.node("count")["outputs"] == {"result": "3 regions\ndone"}
    assert result.node("report")["outputs"] == {"result": "got 3 regions\ndone"}
    assert not result.node("quiet").get("outputs")


def test_stdout_past_the_limit_fails_the_node_naming_the_limit(
    manifest: Callable[[str], Path],
) -> None:
    lines = MAX_RESULT_BYTES // 1024 + 1  # 1 KiB lines, newline included
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: capture-big}}
        spec:
          nodes:
            - name: big
              command: [python3, -c, 'for _ in range({lines}): print("y" * 1023)']
              captureStdout: true
        """
    )
    result = shoal_run(path)
    assert result.code != 0
    assert result.node("big")["phase"] == "Failed"
    assert "MAX_RESULT_BYTES" in result.node("big")["message"]
