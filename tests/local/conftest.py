"""Helpers for the local tier: `shoal run` as a real process, real child processes under it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SHOAL = [sys.executable, "-m", "shoal.cli.main"]
RUN_TIMEOUT = 120


@dataclass
class RunResult:
    code: int
    status: dict[str, Any]
    stderr: str

    def node(self, name: str) -> dict[str, Any]:
        node: dict[str, Any] = self.status["nodes"][name]
        return node


def shoal_run(manifest: Path, *args: str, timeout: float = RUN_TIMEOUT) -> RunResult:
    """Run `shoal run -o json` to completion and parse its status document."""
    proc = subprocess.run(
        [*SHOAL, "run", "--import", "jobs", "-o", "json", str(manifest), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    status = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return RunResult(proc.returncode, status, proc.stderr)


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's `shoal run` keeps its memo cache in its own state directory."""
    state = tmp_path / "shoal-state"
    monkeypatch.setenv("SHOAL_STATE_DIR", str(state))
    return state


@pytest.fixture
def manifest(tmp_path: Path) -> Callable[[str], Path]:
    """Write a manifest (dedented YAML) to a temp file next to a copy of examples/jobs.py."""
    (tmp_path / "jobs.py").write_text((EXAMPLES / "jobs.py").read_text())

    def write(text: str, name: str = "wf.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition another process brings about (a file it writes), with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
