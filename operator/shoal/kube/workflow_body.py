"""The few spec fields the operator acts on, read from a Workflow body as one typed model.

Stopping (`spec.stop`), deletion after `ttlSecondsAfterFinished`, and artifact collection
on deletion (`artifacts.gc`) apply to every Workflow, including one whose spec is invalid
(it ended in Error and still expires) and before the runner compiled it. So they are read
here, leniently and in one place, instead of as raw dict lookups beside the model: a
field the schema would refuse reads as its default, never as an exception in a handler.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from shoal.api.common import ApiModel
from shoal.api.workflow import ArtifactGC, ArtifactsSpec
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.kube.pods import parse_time

__all__ = ["WorkflowControls", "deletion_due", "wait_ttl"]


class WorkflowControls(ApiModel):
    """`spec.stop`/`terminate`, `spec.ttlSecondsAfterFinished` and `spec.artifacts`."""

    model_config = ConfigDict(extra="ignore")

    stop: bool = False
    terminate: bool = False
    ttl_seconds_after_finished: int | None = Field(None, ge=0)
    artifacts: ArtifactsSpec | None = None
    """None when absent or invalid: an invalid run never stored anything."""

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> WorkflowControls:
        """The controls of a Workflow body (or of its `spec` given as `body["spec"]`)."""
        spec = dict(body.get("spec") or {})
        try:
            return cls.model_validate(spec)
        except ValidationError:
            pass
        spec.pop("artifacts", None)
        try:
            return cls.model_validate(spec)
        except ValidationError:
            return cls()

    @property
    def collects_on_deletion(self) -> bool:
        """Its artifacts go when the Workflow is deleted (`artifacts.gc: OnDeletion`)."""
        return self.artifacts is not None and self.artifacts.gc is ArtifactGC.ON_DELETION


def deletion_due(body: Mapping[str, Any]) -> float | None:
    """When a finished Workflow is to be deleted (epoch seconds); None if never."""
    ttl = WorkflowControls.of(body).ttl_seconds_after_finished
    finished = parse_time((body.get("status") or {}).get("finishedAt"))
    return None if ttl is None or finished is None else finished + float(ttl)


async def wait_ttl(
    body: dict[str, Any], api: KubeApi, sleep: Callable[[float], Awaitable[object]]
) -> None:
    """Delete a finished Workflow once `ttlSecondsAfterFinished` has passed."""
    due = deletion_due(body)
    if due is None:
        return
    remaining = due - time.time()
    if remaining > 0:
        await sleep(remaining)
    meta = body["metadata"]
    with contextlib.suppress(ApiError):
        await api.delete(workflows_path(meta["namespace"], meta["name"]))
