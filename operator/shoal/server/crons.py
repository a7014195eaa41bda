"""`/api/v1/cronworkflows`: list, get, suspend, resume, as the caller."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from shoal.cron.runs import PLURAL, VERSION, cronworkflows_path
from shoal.kube.api import KubeApi
from shoal.kube.naming import GROUP
from shoal.server.cron_actions import MAX_NEXT, MAX_RECENT, next_fires, recent_fires
from shoal.server.identity import caller_api
from shoal.server.models import (
    ActionResult,
    CronDetail,
    CronPage,
    cron_detail,
    cron_summary,
    meta,
)
from shoal.server.params import (
    DEFAULT_LIMIT,
    Continue,
    Limit,
    Name,
    Namespace,
    NamespaceFilter,
    Selector,
)
from shoal.server.workflows import ERRORS, call

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/cronworkflows", tags=["cronworkflows"], responses=ERRORS)
Caller = Annotated[KubeApi, Depends(caller_api)]


def _all_namespaces() -> str:
    return f"/apis/{GROUP}/{VERSION}/{PLURAL}"


@router.get("", response_model=CronPage, response_model_by_alias=True)
async def list_crons(
    api: Caller,
    namespace: NamespaceFilter = None,
    label_selector: Selector = None,
    limit: Limit = DEFAULT_LIMIT,
    continue_token: Continue = None,
) -> CronPage:
    """One page of CronWorkflows with their schedules and next fire times."""
    params: dict[str, Any] = {"limit": limit}
    if label_selector:
        params["labelSelector"] = label_selector
    if continue_token:
        params["continue"] = continue_token
    path = cronworkflows_path(namespace) if namespace else _all_namespaces()
    listing = await call(api, "GET", path, params=params)
    token = (listing.get("metadata") or {}).get("continue") or None
    rows = [cron_summary(obj) for obj in listing.get("items") or []]
    return CronPage(items=rows, **{"continue": token})


@router.get("/{namespace}/{name}", response_model=CronDetail, response_model_by_alias=True)
async def get_cron(
    api: Caller,
    namespace: Namespace,
    name: Name,
    next_count: Annotated[int, Query(alias="next", ge=0, le=MAX_NEXT)] = 5,
    recent: Annotated[int, Query(ge=0, le=MAX_RECENT)] = 10,
) -> CronDetail:
    """One CronWorkflow with its next fire times and its latest runs."""
    obj = await call(api, "GET", cronworkflows_path(namespace, name))
    detail = cron_detail(obj)
    detail.next_fires = next_fires(obj, next_count, datetime.now(UTC))
    detail.recent_fires = await recent_fires(api, namespace, name, recent)
    return detail


async def _suspend(api: KubeApi, namespace: str, name: str, suspend: bool) -> ActionResult:
    patched = await call(
        api,
        "PATCH",
        cronworkflows_path(namespace, name),
        body={"spec": {"suspend": suspend}},
        content_type="application/merge-patch+json",
    )
    return ActionResult(metadata=meta(patched), message="suspended" if suspend else "resumed")


@router.post(
    "/{namespace}/{name}/suspend", response_model=ActionResult, response_model_by_alias=True
)
async def suspend_cron(api: Caller, namespace: Namespace, name: Name) -> ActionResult:
    """No new runs until resumed (`spec.suspend: true`); running ones go on."""
    return await _suspend(api, namespace, name, True)


@router.post(
    "/{namespace}/{name}/resume", response_model=ActionResult, response_model_by_alias=True
)
async def resume_cron(api: Caller, namespace: Namespace, name: Name) -> ActionResult:
    return await _suspend(api, namespace, name, False)
