"""A CronWorkflow's schedule ahead and behind (shown by `GET .../{name}`), and
`POST .../trigger`.

Trigger builds the run with `shoal.reruns` as `shoal trigger` does: with an
`idempotencyKey` the run's name derives from the key, so a repeated request (a retried
client, a double click) finds the first run, answered 200 with that run, instead of
creating a second one.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shoal.api.cron import CronWorkflow
from shoal.core.validation import InvalidWorkflow, Problem
from shoal.cron.runs import ANNOTATION_SCHEDULED, ANNOTATION_TRIGGER, LABEL_CRON, cronworkflows_path
from shoal.cron.schedule import expressions, times_between
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.kube.naming import label_value
from shoal.reruns import build_manual_run, check_cron_run
from shoal.server.errors import from_kube, invalid_manifest
from shoal.server.identity import caller_api
from shoal.server.models import ActionResult, Fire, meta, workflow_summary
from shoal.server.params import Name, Namespace
from shoal.server.workflows import ERRORS, call

__all__ = ["MAX_NEXT", "MAX_RECENT", "TriggerRequest", "next_fires", "recent_fires", "router"]

router = APIRouter(prefix="/api/v1/cronworkflows", tags=["cronworkflows"], responses=ERRORS)
Caller = Annotated[KubeApi, Depends(caller_api)]
MAX_NEXT = 20
MAX_RECENT = 50
RUNS_READ = 500
"""Runs of one CronWorkflow read to find the recent ones (a bounded list)."""


class TriggerRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict, max_length=256)
    idempotency_key: str | None = Field(None, alias="idempotencyKey", max_length=1024)


def next_fires(cron: dict[str, Any], count: int, now: datetime) -> list[str]:
    """The next `count` scheduled instants, or none (poll/after triggers, bad spec)."""
    try:
        spec = CronWorkflow.model_validate(cron).spec
        exprs = expressions(spec)
        if not exprs:
            return []
        times = times_between(exprs, ZoneInfo(spec.timezone), now, None)
        return [
            t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in itertools.islice(times, count)
        ]
    except (ValidationError, ValueError):
        return []


def _fire(obj: dict[str, Any]) -> Fire:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return Fire(
        metadata=meta(obj),
        phase=workflow_summary(obj).phase,
        trigger=annotations.get(ANNOTATION_TRIGGER),
        scheduledTime=annotations.get(ANNOTATION_SCHEDULED),
    )


async def recent_fires(api: KubeApi, namespace: str, name: str, count: int) -> list[Fire] | None:
    """Its latest runs still in the cluster, newest first; None when the caller may not
    list Workflows there (the CronWorkflow itself is still shown)."""
    params = {"labelSelector": f"{LABEL_CRON}={label_value(name)}", "limit": RUNS_READ}
    try:
        runs = await api.request("GET", workflows_path(namespace), params=params)
    except ApiError as err:
        if err.status == 403:
            return None
        raise from_kube(err) from None
    items = sorted(
        runs.get("items") or [],
        key=lambda o: str((o.get("metadata") or {}).get("creationTimestamp") or ""),
        reverse=True,
    )
    return [_fire(o) for o in items[:count]]


@router.post(
    "/{namespace}/{name}/trigger",
    status_code=201,
    response_model=ActionResult,
    response_model_by_alias=True,
    responses={200: {"model": ActionResult, "description": "already triggered with this key"}},
)
async def trigger_cron(
    response: Response,
    api: Caller,
    namespace: Namespace,
    name: Name,
    body: Annotated[TriggerRequest | None, Body()] = None,
) -> ActionResult:
    """Start a run now, as `shoal trigger` (same naming, same idempotency key)."""
    wanted = body or TriggerRequest()
    cron = await call(api, "GET", cronworkflows_path(namespace, name))
    source = f"cronworkflow {namespace}/{name}"
    try:
        check_cron_run(cron, wanted.parameters, source)
        run = build_manual_run(cron, wanted.parameters, wanted.idempotency_key, datetime.now(UTC))
    except InvalidWorkflow as err:
        raise invalid_manifest(err) from None
    except ValidationError as err:
        raise invalid_manifest(InvalidWorkflow([Problem(str(err))], source)) from None
    created = await _create(api, namespace, run)
    if created is None:
        existing = await call(api, "GET", workflows_path(namespace, run["metadata"]["name"]))
        response.status_code = 200
        return ActionResult(metadata=meta(existing), message="already triggered with this key")
    return ActionResult(metadata=meta(created), message="triggered")


async def _create(api: KubeApi, namespace: str, run: dict[str, Any]) -> dict[str, Any] | None:
    """POST the run; None when a run of this name exists (the idempotency key's lock)."""
    try:
        return await api.request("POST", workflows_path(namespace), body=run)
    except ApiError as err:
        if err.status == 409 and err.reason == "AlreadyExists" and run["metadata"].get("name"):
            return None
        raise from_kube(err) from None
