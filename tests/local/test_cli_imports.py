"""`shoal run --import MODULE` finds the module where a Python user expects it (beside the
manifest, the current directory, $PYTHONPATH), and `shoal run -` reads the manifest from
stdin: real `shoal run` processes, real child processes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.local.conftest import EXAMPLES, RUN_TIMEOUT, SHOAL

WORKFLOW = """\
apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata: {name: imported}
spec:
  nodes:
    - {name: hi, job: greet, args: {name: cwd}}
"""


def run(cwd: Path, manifest: str, *, stdin: str | None = None, **env: str) -> dict[str, object]:
    done = subprocess.run(
        [*SHOAL, "run", manifest, "--import", "jobs", "-o", "json", "--plain"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=cwd,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    status: dict[str, object] = json.loads(done.stdout)
    return status


def test_import_finds_a_module_in_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "jobs.py").write_text((EXAMPLES / "jobs.py").read_text())  # not beside it
    status = run(tmp_path, "manifests/wf.yaml")
    assert status["phase"] == "Succeeded"


def test_import_finds_a_module_on_a_relative_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "jobs.py").write_text((EXAMPLES / "jobs.py").read_text())
    # Relative to where the command runs, not to the manifest's folder the jobs run in.
    status = run(tmp_path, "manifests/wf.yaml", PYTHONPATH="lib")
    assert status["phase"] == "Succeeded"


def test_run_reads_the_manifest_from_stdin(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text((EXAMPLES / "jobs.py").read_text())
    status = run(tmp_path, "-", stdin=WORKFLOW)
    assert status["phase"] == "Succeeded"
    assert status["nodes"]["hi"]["outputs"] == {"message": "hello, cwd!"}  # type: ignore[index]
