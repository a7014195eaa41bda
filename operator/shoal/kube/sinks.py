"""Where a Workflow runner's side effects go: Kubernetes Events, job logs, finished
attempts, impostors.

The runner calls these synchronously on its event loop, so every implementation must
return at once (the archive's writers buffer and write in their own tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from shoal.core.state import TaskFinished

__all__ = ["AttemptSink", "EventSink", "ImpostorSink", "LogSink", "NullLogSink"]


class EventSink(Protocol):
    """Where Kubernetes Events about a workflow go (kopf's poster in the operator)."""

    def __call__(self, body: dict[str, Any], type: str, reason: str, message: str) -> None: ...


class LogSink(Protocol):
    """Where job log lines go (PostgreSQL once the archive exists; nowhere by default)."""

    def write(
        self,
        uid: str,
        node: str,
        index: int,
        attempt: int,
        line: str,
        *,
        retry: int = 0,
        line_no: int | None = None,
    ) -> None: ...


class NullLogSink:
    """Keeps nothing (no archive configured)."""

    def write(self, *args: Any, **kwargs: Any) -> None:
        return


class AttemptSink(Protocol):
    """Where finished attempts go (the archive's per-item history); must never block."""

    def record(
        self, uid: str, event: TaskFinished, started_at: float | None, retry: int
    ) -> None: ...


ImpostorSink = Callable[[str, str], None]
"""Called with the kind ("pod", "job") and a description of each impostor."""
