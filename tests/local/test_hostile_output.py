"""`shoal run` against output it cannot trust: forged protocol lines, huge lines, and a
child that ignores SIGTERM. Each case fails the way a user would notice on the old code:
a forged result won, the run stalled, or SIGTERM was ignored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.local.conftest import REPO, SHOAL, shoal_run, wait_for

pytestmark = pytest.mark.local

Manifest = Callable[..., Path]

FORGED = '{"type":"result","status":"succeeded","outputs":{"owned":true}}'
STOP_BOUND = 10.0
"""Seconds `shoal run` may take to end after SIGTERM (its kill grace is 5 s)."""


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_printed_fake_result_does_not_replace_the_jobs_return_value(
    manifest: Manifest, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs.py"
    jobs.write_text(
        jobs.read_text()
        + f'''

@job("print-untrusted")
def print_untrusted(ctx: Context) -> dict[str, int]:
    """Echo records from an untrusted source, as a job that logs its input would."""
    for marker in ("@shoal/1 ", "@shoal/2 ", "@shoal/2:{"0" * 32} "):
        print(marker + {FORGED!r})
    return {{"real": 1}}
'''
    )
    workdir = tmp_path / "work"
    path = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: forged}
        spec:
          nodes:
            - name: victim
              job: print-untrusted
        """
    )
    result = shoal_run(path, "--workdir", str(workdir))
    assert result.code == 0, result.stderr
    assert result.node("victim")["outputs"] == {"real": 1}
    assert "protocol version 1 is no longer accepted" in result.stderr
    log = (workdir / "victim.log").read_text()
    assert log.count('"owned":true') == 3  # kept as log text, nothing lost
    assert "@shoal/2:" + "0" * 32 in log
    assert '@shoal/2 {"type":"result"' in log  # the real result, its token stripped


def test_a_shell_command_reports_outputs_with_the_token_and_forgeries_do_not_count(
    manifest: Manifest, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    path = manifest(
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: echo-path}
        spec:
          nodes:
            - name: sh
              command:
                - sh
                - -c
                - |
                  echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN "'{"type":"output","key":"n","value":3}'
                  echo '@shoal/1 {"type":"output","key":"n","value":666}'
                  echo '@shoal/2 {"type":"output","key":"forged","value":1}'
                  echo "my token is $SHOAL_PROTOCOL_TOKEN"
        """
    )
    result = shoal_run(path, "--workdir", str(workdir))
    assert result.code == 0, result.stderr
    assert result.node("sh")["outputs"] == {"n": 3}
    log = (workdir / "sh.log").read_text()
    assert "my token is [token]" in log  # echoed by mistake: scrubbed from the log
    assert "@shoal/2:" not in log  # no line kept its token


def test_a_10_mb_line_without_newline_is_cut_and_the_run_goes_on(
    manifest: Manifest, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    child = tmp_path / "huge.py"
    child.write_text(
        "import os, sys\n"
        "sys.stdout.write('y' * 10_000_000)\n"
        "sys.stdout.flush()\n"
        "token = os.environ['SHOAL_PROTOCOL_TOKEN']\n"
        "print()\n"
        'print(\'@shoal/2:\' + token + \' {"type":"output","key":"after","value":1}\')\n'
    )
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: huge-line}}
        spec:
          nodes:
            - name: huge
              command: [{sys.executable}, {child}]
        """
    )
    started = time.monotonic()
    result = shoal_run(path, "--workdir", str(workdir), timeout=60)
    assert time.monotonic() - started < 30
    assert result.code == 0, result.stderr[-2000:]
    assert result.node("huge")["outputs"] == {"after": 1}
    assert "line longer than 1048576 bytes" in result.stderr
    assert len(result.stderr) < 64 * 1024  # shown shortened; the log file has the 1 MiB
    log = workdir / "huge.log"
    assert log.stat().st_size < 2 * 1024 * 1024  # 1 MiB kept, the other 9 MB dropped
    assert "[cut: line longer than 1048576 bytes]" in log.read_text()


def test_sigterm_ends_the_run_within_seconds_and_leaves_no_child(
    manifest: Manifest, tmp_path: Path
) -> None:
    """The child stalls an unbounded reader with a 10 MB line, then ignores SIGTERM."""
    pidfile, ready = tmp_path / "child.pid", tmp_path / "ready"
    child = tmp_path / "stubborn.py"
    child.write_text(
        "import os, pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(pidfile)!r}).write_text(str(os.getpid()))\n"
        "sys.stdout.write('z' * 10_000_000)\n"
        "sys.stdout.flush()\n"
        f"pathlib.Path({str(ready)!r}).write_text('1')\n"
        "while True:\n"
        "    time.sleep(1)\n"
    )
    path = manifest(
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: stubborn}}
        spec:
          nodes:
            - name: stubborn
              command: [{sys.executable}, {child}]
        """
    )
    # Files, not pipes: the run echoes the (cut) 1 MiB line, more than a pipe buffers.
    out_path, err_path = tmp_path / "out.json", tmp_path / "err.txt"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [*SHOAL, "run", "-o", "json", str(path)], stdout=out_file, stderr=err_file, cwd=REPO
        )
    pid = 0
    try:
        wait_for(lambda: ready.exists(), 60, "the child's 10 MB line to be read")
        pid = int(pidfile.read_text())
        assert os.getpgid(pid) == pid  # its own process group, as `shoal run` starts it
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        proc.wait(timeout=60)
        took = time.monotonic() - sent
        out, err = out_path.read_text(), err_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if not pid and pidfile.exists() and pidfile.read_text():
            pid = int(pidfile.read_text())  # the test failed early: still leave no child
        if pid and group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    assert took < STOP_BOUND, f"shoal run took {took:.1f}s after SIGTERM\n{err[-2000:]}"
    assert proc.returncode == 1, err[-2000:]
    assert '"phase": "Stopped"' in out
    wait_for(lambda: not group_alive(pid), 5, "the child's process group to be gone")
