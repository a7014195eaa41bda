"""Approval gates and suspension in `shoal run`, decided from another terminal with
`shoal resume --local WORKDIR` / `shoal suspend --local WORKDIR` (real processes)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.local.conftest import REPO, SHOAL, wait_for

pytestmark = pytest.mark.local

GATED = """\
apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata: {name: gated}
spec:
  nodes:
    - {name: build, job: shoal.echo, args: {artifact: a-1}}
    - {name: approve, dependsOn: [build], suspend: {}}
    - name: deploy
      dependsOn: [approve]
      job: shoal.echo
      args: {by: "${{ nodes.approve.outputs.by }}", note: "${{ nodes.approve.outputs.message }}"}
    - {name: rollback, dependsOn: [approve], runPolicy: onFailure, job: shoal.echo, args: {x: 1}}
"""


def start(manifest: Path, workdir: Path) -> subprocess.Popen[str]:
    argv = [*SHOAL, "run", "--plain", "-o", "json", "--workdir", str(workdir), str(manifest)]
    return subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def shoal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHOAL, *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, object]]:
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert out.strip(), err
    return proc.returncode, json.loads(out)


def gate_waiting(workdir: Path) -> Callable[[], bool]:
    """The run reached the gate's node once build's log exists (the run's own output is
    read only at its end); a decision written before the gate waits counts as well."""
    return lambda: (workdir / "build.log").exists()


@pytest.mark.parametrize("reject", [False, True])
def test_a_gate_waits_until_resumed_from_another_process(
    manifest: Callable[[str], Path], tmp_path: Path, reject: bool
) -> None:
    workdir = tmp_path / "run"
    proc = start(manifest(GATED), workdir)
    try:
        wait_for(gate_waiting(workdir), 60, "the build node to run")
        assert proc.poll() is None  # held at the gate: nothing decides it by itself
        flags = ["--reject"] if reject else []
        done = shoal(
            "resume", "--local", str(workdir), "--node", "approve", "--message", "lgtm", *flags
        )
        assert done.returncode == 0, done.stderr
        assert ("rejected" if reject else "approved") in done.stdout
        code, status = finish(proc)
    finally:
        proc.kill()
    nodes = status["nodes"]
    assert isinstance(nodes, dict)
    gate = nodes["approve"]
    assert gate["outputs"]["approved"] is (not reject)
    assert gate["outputs"]["message"] == "lgtm"
    assert gate["outputs"]["by"]  # the login name of whoever ran resume
    if reject:
        assert code == 1
        assert gate["phase"] == "Failed"
        assert nodes["deploy"]["phase"] == "Omitted"
        assert nodes["rollback"]["phase"] == "Succeeded"
    else:
        assert code == 0
        assert nodes["deploy"]["outputs"] == {"by": gate["outputs"]["by"], "note": "lgtm"}
        assert nodes["rollback"]["phase"] == "Skipped"


HELD = """\
apiVersion: shoal.dev/v1alpha1
kind: Workflow
metadata: {name: two}
spec:
  nodes:
    - name: first
      command:
        - python3
        - -c
        - |
          import os, time
          deadline = time.monotonic() + 60
          while not os.path.exists("go") and time.monotonic() < deadline:
              time.sleep(0.05)
          open("first-done", "w").close()
    - {name: second, dependsOn: [first], command: ["true"]}
"""


def test_a_suspended_local_run_starts_nothing_new_until_resumed(
    manifest: Callable[[str], Path], tmp_path: Path
) -> None:
    workdir = tmp_path / "run"
    proc = start(manifest(HELD), workdir)
    try:
        wait_for(lambda: (workdir / "first.log").exists(), 60, "the first node to run")
        assert shoal("suspend", "--local", str(workdir)).returncode == 0
        (tmp_path / "go").touch()
        wait_for(lambda: (tmp_path / "first-done").exists(), 60, "the first node to end")
        # What ran has finished; a run that was not suspended starts `second` within a
        # poll interval (0.5 s) of that. Suspended, it is still running 4 s later.
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=4)
        assert not (workdir / "second.log").exists()
        assert shoal("resume", "--local", str(workdir)).returncode == 0
        code, status = finish(proc)
    finally:
        proc.kill()
    assert code == 0
    nodes = status["nodes"]
    assert isinstance(nodes, dict)
    assert nodes["second"]["phase"] == "Succeeded"


def test_resume_local_names_a_missing_work_directory(tmp_path: Path) -> None:
    done = shoal("resume", "--local", str(tmp_path / "nope"), "--node", "approve")
    assert done.returncode == 1
    assert "no such work directory" in done.stderr
