"""docs/operator.md documents every flag `shoal operator` accepts, with its variable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "operator.md"


def operator_flags() -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "shoal.cli.main", "operator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(re.findall(r"(--[a-z][a-z0-9-]+)", proc.stdout)) - {"--help"}


def test_every_operator_flag_is_in_the_table() -> None:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `-")]
    documented = {flag for row in rows for flag in re.findall(r"`(?:-\w/)?(--[a-z0-9-]+)`", row)}
    missing = operator_flags() - documented
    assert not missing, f"flags missing from docs/operator.md's table: {sorted(missing)}"


def test_without_credentials_the_operator_says_so_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "shoal.cli.main", "operator", "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("shoal operator: error: no Kubernetes credentials")
