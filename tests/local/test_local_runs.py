"""`shoal run` behaviour a user relies on: invalid input, limits, deadlines, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.local.conftest import REPO, SHOAL, shoal_run, wait_for

pytestmark = pytest.mark.local

Manifest = Callable[..., Path]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cyclic_manifest_exits_2_names_the_cycle_and_runs_nothing(
    manifest: Manifest, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: cyclic}}
        spec:
          nodes:
            - name: first
              command: [touch, "{marker}"]
            - name: a
              command: [touch, "{marker}"]
              dependsOn: [c]
            - name: b
              command: [touch, "{marker}"]
              dependsOn: [a]
            - name: c
              command: [touch, "{marker}"]
              dependsOn: [b]
        """
    )
    result = shoal_run(path)
    assert result.code == 2
    assert "dependency cycle: a -> c -> b -> a" in result.stderr
    assert str(path) in result.stderr
    assert not marker.exists()


def test_invalid_field_is_reported_with_file_node_and_field(manifest: Manifest) -> None:
    path = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: typo}
        spec:
          nodes:
            - name: one
              job: shoal.noop
              retries: {limit: -1}
        """
    )
    result = shoal_run(path)
    assert result.code == 2
    # file:line:column of `limit` inside `retries: {limit: -1}` (the text starts with "\n").
    assert f"{path}:9:17: node 'one': retries.limit:" in result.stderr


def test_validate_reports_each_bad_file_and_exit_code(manifest: Manifest) -> None:
    good = REPO / "examples" / "hello.yaml"
    bad = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: bad}
        spec:
          nodes:
            - {name: a, job: x, dependsOn: [nope]}
        """,
        name="bad.yaml",
    )
    proc = subprocess.run(
        [*SHOAL, "validate", str(good), str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "hello: valid" in proc.stdout
    assert "node 'a': dependsOn: unknown dependency 'nope'" in proc.stderr


def test_timeout_kills_the_attempt_and_fails_the_node(manifest: Manifest) -> None:
    path = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: slow}
        spec:
          nodes:
            - name: sleeper
              command: [sleep, "60"]
              timeoutSeconds: 0.5
        """
    )
    started = time.monotonic()
    result = shoal_run(path)
    assert result.code == 1
    assert result.node("sleeper")["phase"] == "Failed"
    assert "timed out after 0.5s" in result.node("sleeper")["message"]
    assert time.monotonic() - started < 30


def test_workflow_deadline_stops_everything(manifest: Manifest) -> None:
    path = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: deadline}
        spec:
          activeDeadlineSeconds: 1
          nodes:
            - name: sleeper
              command: [sleep, "60"]
            - name: later
              command: ["true"]
              dependsOn: [sleeper]
        """
    )
    result = shoal_run(path)
    assert result.code == 1
    assert result.status["phase"] == "Failed"
    assert "activeDeadlineSeconds" in result.status["message"]
    assert result.node("later")["phase"] == "Omitted"


def test_fan_out_never_exceeds_its_parallelism(manifest: Manifest, tmp_path: Path) -> None:
    spans = tmp_path / "spans"
    spans.mkdir()
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: bounded}}
        spec:
          parallelism: 5
          nodes:
            - name: items
              forEach: [1, 2, 3, 4, 5, 6, 7, 8]
              parallelism: 3
              command:
                - sh
                - -c
                - 'date +%s.%N > {spans}/$SHOAL_ITEM_INDEX.start; sleep 0.3;
                   date +%s.%N > {spans}/$SHOAL_ITEM_INDEX.end'
        """
    )
    result = shoal_run(path)
    assert result.code == 0, result.stderr
    events = []
    for i in range(8):
        events.append((float((spans / f"{i}.start").read_text()), 1))
        events.append((float((spans / f"{i}.end").read_text()), -1))
    running = peak = 0
    for _, delta in sorted(events):
        running += delta
        peak = max(peak, running)
    assert 1 < peak <= 3


def test_ctrl_c_stops_the_run_and_leaves_no_orphan(manifest: Manifest, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: interrupted}}
        spec:
          nodes:
            - name: forever
              command: [sh, -c, 'sleep 300 & echo $! > {pidfile}; wait']
        """
    )
    proc = subprocess.Popen(
        [*SHOAL, "run", "-o", "json", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "", 60, "child pid")
        grandchild = int(pidfile.read_text())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert '"phase": "Stopped"' in out
    wait_for(lambda: not pid_alive(grandchild), 10, "grandchild to be gone")


def test_unknown_job_fails_without_retrying(manifest: Manifest) -> None:
    path = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: unknown-job}
        spec:
          nodes:
            - name: typo
              job: shoal.nop
              retries: {limit: 3, backoffSeconds: 0}
        """
    )
    refused = shoal_run(path)  # with --import the name is checked before anything runs
    assert refused.code == 2
    assert "node 'typo': job: unknown job 'shoal.nop'; did you mean 'shoal.noop'?" in refused.stderr
    # Without --import only the worker knows the registry: it fails once, not retried.
    proc = subprocess.run(
        [*SHOAL, "run", "-o", "json", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    node = json.loads(proc.stdout)["nodes"]["typo"]
    assert node["attempts"] == 1
    assert "shoal.nop" in node["message"]
    assert "shoal.noop" in node["message"]  # the worker suggests the closest registered name


def test_a_grandchild_holding_the_output_pipe_does_not_hang_the_run(
    manifest: Manifest, tmp_path: Path
) -> None:
    pidfile = tmp_path / "daemon.pid"
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: leaky}}
        spec:
          nodes:
            - name: leaky
              command: [sh, -c, 'setsid sleep 120 & echo $! > {pidfile}; echo started']
        """
    )
    started = time.monotonic()
    try:
        result = shoal_run(path, timeout=60)
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert result.code == 0, result.stderr
    assert result.node("leaky")["phase"] == "Succeeded"
    assert time.monotonic() - started < 30
