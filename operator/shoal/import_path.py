"""Where `--import MODULE` is looked for, shared by `shoal validate` and both paths of
`shoal run` (which also hands it to its children as PYTHONPATH).

A module of its own: `shoal run` needs the path for every run, but the job checker
(`job_check.py`, which imports `inspect`) only when `--import` is given.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["import_path"]


def import_path(manifest_dir: Path, cwd: Path, pythonpath: str | None) -> list[Path]:
    """Beside the manifest, the current directory, then $PYTHONPATH, made absolute (the
    jobs run in the manifest's folder, not here)."""
    found: list[Path] = []
    entries = [p for p in (pythonpath or "").split(os.pathsep) if p]
    for path in [manifest_dir, cwd, *(cwd / p for p in entries)]:
        if path.resolve() not in found:
            found.append(path.resolve())
    return found
