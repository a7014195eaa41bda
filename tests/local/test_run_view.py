"""What `shoal run` shows a user: failing frames, progress, retries apart from items, and
each error once. Every test runs the real `shoal run` with real worker processes."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import subprocess
import textwrap
from pathlib import Path

from tests.local.conftest import REPO, RUN_TIMEOUT, SHOAL, wait_for

JOBS = """
import time
from pathlib import Path

from shoal_worker import Context, job


def fail_deep(reason: str) -> None:
    raise ValueError(f"bad row: {reason}")


@job("crash")
def crash(ctx: Context, reason: str) -> None:
    fail_deep(reason)


@job("counted")
def counted(ctx: Context, gate: str) -> dict[str, int]:
    ctx.progress(current=3, total=7, message="rows 3 of 7")
    deadline = time.monotonic() + 60
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # waits for the test, which has seen the progress on screen
    ctx.progress(current=7, total=7, message="rows 7 of 7")
    return {"rows": 7}


@job("second-try")
def second_try(ctx: Context, value: int) -> dict[str, int]:
    if value == 2 and ctx.attempt == 1:
        ctx.fail(f"item {value}: transient")
    return {"value": value}
"""

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]")


def write(tmp_path: Path, manifest: str) -> Path:
    (tmp_path / "viewjobs.py").write_text(JOBS)
    path = tmp_path / "wf.yaml"
    path.write_text(textwrap.dedent(manifest))
    return path


def run_plain(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHOAL, "run", *args, str(path)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=REPO,
    )


def summary_of(out: str) -> str:
    """The final table and what follows it (the events come before it)."""
    start = out.index(" node ")
    return out[start:]


def test_a_python_failure_shows_its_failing_frame_in_the_events_the_summary_and_the_log(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "work"
    path = write(
        tmp_path,
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: crashing}
        spec:
          nodes:
            - name: boom
              job: crash
              args: {reason: "row 17"}
        """,
    )
    proc = run_plain(path, "--import", "viewjobs", "--workdir", str(workdir))
    assert proc.returncode == 1, proc.stderr
    frame = 'viewjobs.py:9 in fail_deep: raise ValueError(f"bad row: {reason}")'
    events, summary = proc.stdout[: proc.stdout.index(" node ")], summary_of(proc.stdout)
    assert "boom | ERROR ValueError: bad row: row 17" in events
    assert f"boom |   at {frame}" in events
    cells = [line.split("│")[-1].strip() for line in summary.splitlines() if "│" in line]
    shown = " ".join(cells)  # the message column, its folded lines joined
    assert f"ValueError: bad row: row 17 at {frame}" in shown, summary
    assert "\\n" not in proc.stdout  # nothing shown as escaped JSON
    log = (workdir / "boom.log").read_text()
    assert 'raise ValueError(f"bad row: {reason}")\nValueError: bad row: row 17\n' in log


def test_the_live_view_shows_a_progress_bar_and_message_and_the_summary_the_count(
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    path = write(
        tmp_path,
        f"""
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {{name: counting}}
        spec:
          nodes:
            - name: load
              job: counted
              args: {{gate: "{gate}"}}
        """,
    )
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*SHOAL, "run", "--import", "viewjobs", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "120", "LINES": "40"},
    )
    os.close(follower)
    screen = bytearray()

    def seen(text: str) -> bool:
        with contextlib.suppress(OSError):  # OSError: the run ended, the terminal closed
            screen.extend(os.read(leader, 65536))
        return text in ANSI.sub("", screen.decode(errors="replace"))

    try:
        wait_for(lambda: seen("rows 3 of 7"), RUN_TIMEOUT, "the progress message on screen")
        live = ANSI.sub("", screen.decode(errors="replace"))
        assert "3/7" in live  # the count
        assert "━" in live  # and its bar
        gate.touch()
        assert proc.wait(RUN_TIMEOUT) == 0
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen.extend(chunk)
    finally:
        proc.kill()
        os.close(leader)
    text = ANSI.sub("", screen.decode(errors="replace"))
    final = text[text.rindex(" node ") :]  # the summary, after the last live frame
    assert "progress" not in final.splitlines()[0]
    assert re.search(r"load\s+│\s+Succeeded\s+│\s+7/7", final), final


def test_the_summary_counts_items_apart_from_retries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        apiVersion: shoal.dev/v1alpha1
        kind: Workflow
        metadata: {name: retried}
        spec:
          nodes:
            - name: each
              job: second-try
              forEach: [1, 2, 3, 4]
              itemArg: value
              retries: {limit: 2, backoffSeconds: 0}
        """,
    )
    proc = run_plain(path, "--import", "viewjobs")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "each: Succeeded (4/4 items) after 1 retry" in proc.stdout
    summary = summary_of(proc.stdout)
    assert "retries" in summary.splitlines()[0]
    assert "attempts" not in summary
    assert re.search(r"each\s+│\s+Succeeded\s+│\s+4/4\s+│\s+1 retry\s+│", summary), summary


UNKNOWN_JOB_FAN_OUT = """
    apiVersion: shoal.dev/v1alpha1
    kind: Workflow
    metadata: {name: misspelt}
    spec:
      nodes:
        - name: each
          job: crsh
          forEach: [1, 2, 3, 4, 5]
          args: {reason: "${{ item }}"}
    """


def test_an_unknown_job_is_refused_before_anything_runs_when_modules_are_imported(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "work"
    path = write(tmp_path, UNKNOWN_JOB_FAN_OUT)
    proc = run_plain(path, "--import", "viewjobs", "--workdir", str(workdir))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("unknown job 'crsh'") == 1
    assert "node 'each': job: unknown job 'crsh'; did you mean 'crash'?" in proc.stderr
    assert "(jobs imported: counted, crash, second-try)" in proc.stderr
    assert "workflow misspelt" not in proc.stdout  # nothing started
    assert not workdir.exists() or not any(workdir.iterdir())


def test_an_unknown_job_found_by_the_workers_is_told_once_per_node(tmp_path: Path) -> None:
    path = write(tmp_path, UNKNOWN_JOB_FAN_OUT)
    proc = run_plain(path)  # no --import: only the workers know the registry
    assert proc.returncode == 1, proc.stdout + proc.stderr
    events, summary = proc.stdout[: proc.stdout.index(" node ")], summary_of(proc.stdout)
    assert events.count("unknown job 'crsh'") == 1, events
    assert " ".join(summary.split()).count("unknown job 'crsh'") == 1, summary
    assert "4 more items failed the same way" in events
