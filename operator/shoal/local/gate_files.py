"""How `shoal resume --local` and `shoal suspend --local` reach a running `shoal run`.

The run's work directory (`--workdir`, printed when a gate starts waiting) holds a
`control/` directory: one JSON file per decided gate in `approvals/` and a `suspend`
marker. Files are written whole (a temporary name, then a rename), so the executor never
reads half a decision. The executor reads them while a gate waits or the run is
suspended, every GATE_POLL_SECONDS: the one difference from the cluster, where a decision
is a watch event.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a model, loaded when a gate waits: `shoal run` without gates loads no pydantic
    from shoal.api.gates import Approval

__all__ = [
    "GATE_POLL_SECONDS",
    "MAX_APPROVAL_BYTES",
    "read_approvals",
    "read_suspended",
    "set_suspended",
    "suspend_marker",
    "write_approval",
]

GATE_POLL_SECONDS = 0.5
"""How often a local run looks for decisions while one can matter."""
MAX_APPROVAL_BYTES = 16 * 1024
"""A larger approval file is ignored (a decision is a few hundred bytes)."""


def _control(workdir: Path) -> Path:
    return workdir / "control"


def write_approval(workdir: Path, node: str, approval: Approval) -> Path:
    """Record a decision on `node` for the run in `workdir`; returns the file written."""
    folder = _control(workdir) / "approvals"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{node}.json"
    partial = folder / f".{node}.json.partial"
    partial.write_text(json.dumps(approval.dump()), encoding="utf-8")
    os.replace(partial, target)
    return target


def read_approvals(workdir: Path, gates: set[str]) -> dict[str, Approval]:
    """The well-formed decisions on `gates`; anything else in the folder is ignored."""
    from pydantic import ValidationError

    from shoal.api.gates import Approval

    folder = _control(workdir) / "approvals"
    found: dict[str, Approval] = {}
    for node in gates:
        path = folder / f"{node}.json"
        try:
            if path.stat().st_size > MAX_APPROVAL_BYTES:
                continue
            found[node] = Approval.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            continue
    return found


def set_suspended(workdir: Path, suspended: bool) -> None:
    """Suspend the run in `workdir` (a marker file), or resume it."""
    marker = suspend_marker(workdir)
    if suspended:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def suspend_marker(workdir: Path) -> Path:
    """The file whose presence suspends the run in `workdir`."""
    return _control(workdir) / "suspend"


def read_suspended(workdir: Path) -> bool:
    return suspend_marker(workdir).exists()
