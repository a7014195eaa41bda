"""`/api/v1/workflows`: list, get, stop, delete, as the caller (RBAC decides each)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from shoal.api.workflow import FINISHED_PHASES
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.server.errors import ErrorBody, from_kube
from shoal.server.identity import caller_api
from shoal.server.models import (
    ActionResult,
    WorkflowDetail,
    WorkflowPage,
    WorkflowSummary,
    meta,
    page_response,
    workflow_detail,
    workflow_summary,
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

__all__ = ["ERRORS", "FINISHED", "ask_to_end", "call", "router"]

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 422, 502)
}
FINISHED = FINISHED_PHASES
router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], responses=ERRORS)
Caller = Annotated[KubeApi, Depends(caller_api)]


async def call(api: KubeApi, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One Kubernetes request as the caller; its refusal becomes our error shape."""
    try:
        return await api.request(method, path, **kwargs)
    except ApiError as err:
        raise from_kube(err) from None


@router.get("", response_model=WorkflowPage, response_model_by_alias=True)
async def list_workflows(
    api: Caller,
    namespace: NamespaceFilter = None,
    phase: Annotated[str | None, Query(max_length=32, description="only this phase")] = None,
    label_selector: Selector = None,
    name_prefix: Annotated[str | None, Query(alias="namePrefix", max_length=253)] = None,
    limit: Limit = DEFAULT_LIMIT,
    continue_token: Continue = None,
) -> Response:
    """One page of Workflows. Kubernetes pages them (`limit`, `continue`); the phase and
    name-prefix filters apply to that page, so a page may hold fewer than `limit`."""
    params: dict[str, Any] = {"limit": limit}
    if label_selector:
        params["labelSelector"] = label_selector
    if continue_token:
        params["continue"] = continue_token
    listing = await call(api, "GET", workflows_path(namespace), params=params)
    rows: list[WorkflowSummary] = []
    for obj in listing.get("items") or []:
        row = workflow_summary(obj)
        if phase and row.phase != phase:
            continue
        if name_prefix and not row.metadata.name.startswith(name_prefix):
            continue
        rows.append(row)
    token = (listing.get("metadata") or {}).get("continue") or None
    return page_response(WorkflowPage(items=rows, **{"continue": token}))


@router.get("/{namespace}/{name}", response_model=WorkflowDetail, response_model_by_alias=True)
async def get_workflow(api: Caller, namespace: Namespace, name: Name) -> WorkflowDetail:
    """One Workflow with its typed status (what `shoal get` shows)."""
    return workflow_detail(await call(api, "GET", workflows_path(namespace, name)))


async def ask_to_end(api: KubeApi, namespace: str, name: str, field: str) -> ActionResult:
    """`spec.<field>: true` (`stop` or `terminate`), as `shoal stop`/`terminate` do; a
    finished workflow is left alone."""
    path = workflows_path(namespace, name)
    obj = await call(api, "GET", path)
    summary = workflow_summary(obj)
    if summary.phase in FINISHED:
        return ActionResult(metadata=meta(obj), message=f"already finished ({summary.phase})")
    patched = await call(
        api,
        "PATCH",
        path,
        body={"spec": {field: True}},
        content_type="application/merge-patch+json",
    )
    return ActionResult(metadata=meta(patched), message=f"{field} requested")


@router.post("/{namespace}/{name}/stop", response_model=ActionResult, response_model_by_alias=True)
async def stop_workflow(api: Caller, namespace: Namespace, name: Name) -> ActionResult:
    """Ask the operator to stop it (`spec.stop: true`, as `shoal stop`): `runPolicy:
    always` nodes still run."""
    return await ask_to_end(api, namespace, name, "stop")


@router.delete("/{namespace}/{name}", response_model=ActionResult, response_model_by_alias=True)
async def delete_workflow(api: Caller, namespace: Namespace, name: Name) -> ActionResult:
    """Delete it; its Jobs and pods go with it (Kubernetes garbage collection)."""
    path = workflows_path(namespace, name)
    obj = await call(api, "GET", path)
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    await call(api, "DELETE", path, body=body)
    return ActionResult(metadata=meta(obj), message="deleted")
