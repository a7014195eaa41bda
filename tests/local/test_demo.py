"""`make demo`, the README's first command, works in a fresh copy of the repository.

It builds its own virtualenv with only the base package and runs examples/catalog.yaml,
which must visibly show a retry and a skipped condition (README's promise).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.local.conftest import REPO

pytestmark = pytest.mark.local

DEMO_TIMEOUT = 600  # a cold pip install of the base package, then a 5-second run


def tracked_copy(target: Path) -> None:
    """The repository's tracked (and new, not ignored) files, without any .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        source = REPO / raw.decode()
        if source.is_file():
            dest = target / raw.decode()
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)


def test_make_demo_in_a_fresh_copy(tmp_path: Path) -> None:
    repo = tmp_path / "shoal"
    tracked_copy(repo)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run(
        ["make", "demo", "PYTHON=python3"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "demo: installing Shoal (base package only)" in out
    assert "attempt 1 failed: eu-west-3: upstream timed out (transient)" in out
    assert "(attempt 2)" in out
    assert "alert-empty: Skipped" in out
    assert "workflow catalog-integration Succeeded" in out
    # Only the base package: no operator dependencies in the demo's environment.
    listed = subprocess.run(
        [str(repo / ".venv/bin/python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "kopf==" not in listed
    assert "boto3==" not in listed
