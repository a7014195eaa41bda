"""Where a run from templates keeps the spec it resolved when it started, and reading it.

Tiny and dependency-free on purpose: the retry transition, `shoal get`/`logs` and the REST
API read a Workflow's nodes through `run_spec`, and must not pull in the resolver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["RESOLVED_SPEC", "run_spec"]

RESOLVED_SPEC = "resolvedSpec"
"""The status field where the operator records the spec a run resolved when it started."""


def run_spec(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The spec a Workflow object runs: the recorded resolved one (a run from templates),
    else its own; what readers of its nodes (retry, get, logs) look at."""
    recorded = (body.get("status") or {}).get(RESOLVED_SPEC)
    if isinstance(recorded, Mapping):
        return recorded
    spec = body.get("spec")
    return spec if isinstance(spec, Mapping) else {}
