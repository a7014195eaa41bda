"""Outputs from files through `shoal run`: read after the command, flowing downstream,
offloaded when large, and a missing file failing its node by name (issue 19)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shoal_worker.offload import ValueRef
from tests.local.conftest import shoal_run


def test_a_written_file_is_an_output_a_later_node_reads(
    manifest: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "hello.txt"
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: file-outputs}}
        spec:
          nodes:
            - name: generate
              command: [sh, -c, 'echo "hello world" > {out}; echo "a log line"']
              outputs:
                message: {{path: {out}}}
            - name: consume
              dependsOn: [generate]
              command: [echo, 'got ${{{{ nodes.generate.outputs.message }}}}']
              captureStdout: true
        """
    )
    result = shoal_run(path)
    assert result.code == 0, result.stderr
    assert result.node("generate")["outputs"] == {"message": "hello world"}
    assert result.node("consume")["outputs"] == {"result": "got hello world"}


def test_a_missing_file_fails_the_node_naming_output_and_path(
    manifest: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "never-written.txt"
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: file-missing}}
        spec:
          nodes:
            - name: forgetful
              command: [sh, -c, 'echo done']
              outputs:
                report: {{path: {out}}}
        """
    )
    result = shoal_run(path)
    assert result.code != 0
    node = result.node("forgetful")
    assert node["phase"] == "Failed"
    assert f"output 'report' from {out}: no such file" in node["message"]


def test_a_large_file_is_offloaded_like_any_output(
    manifest: Callable[[str], Path], tmp_path: Path
) -> None:
    out = tmp_path / "big.txt"
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: file-big}}
        spec:
          nodes:
            - name: gen
              command: [python3, -c, 'open("{out}", "w").write("x" * 10000)']
              outputs:
                big: {{path: {out}}}
        """
    )
    result = shoal_run(path)
    assert result.code == 0, result.stderr
    ref = ValueRef.parse(result.node("gen")["outputs"]["big"])
    assert ref is not None, result.node("gen")
    assert ref.ref.size == 10002  # the JSON string: 10,000 characters and two quotes
