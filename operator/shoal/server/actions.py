"""`POST .../terminate` and `POST .../resubmit`, as the caller.

Resubmit copies a past run (the Workflow in the cluster, or, once it is gone and the
server has an archive, its latest archived run) into a new Workflow with parameter
overrides, built and validated by `shoal.reruns` exactly as `shoal resubmit` does.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shoal.api.limits import MAX_JSON_BYTES
from shoal.core.validation import InvalidWorkflow
from shoal.kube.api import ApiError, KubeApi, workflows_path
from shoal.reruns import resubmission, validate_resubmission
from shoal.server.access import Check, require
from shoal.server.archive_db import archive_handle, query
from shoal.server.errors import ApiProblem, from_kube, invalid_manifest
from shoal.server.identity import caller_api
from shoal.server.models import ActionResult, meta
from shoal.server.params import Name, Namespace
from shoal.server.workflows import ERRORS, ask_to_end, call

__all__ = ["ResubmitRequest", "router"]

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], responses=ERRORS)
Caller = Annotated[KubeApi, Depends(caller_api)]
_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class ResubmitRequest(BaseModel):
    """What a resubmission changes: parameters (merged over the original's) and the name."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(None, max_length=253, pattern=_NAME)
    generate_name: str | None = Field(None, alias="generateName", max_length=200, pattern=_NAME)

    @field_validator("parameters")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_JSON_BYTES:
            raise ValueError(f"parameters are at most {MAX_JSON_BYTES} bytes of JSON")
        return value


@router.post(
    "/{namespace}/{name}/terminate", response_model=ActionResult, response_model_by_alias=True
)
async def terminate_workflow(api: Caller, namespace: Namespace, name: Name) -> ActionResult:
    """Stop it and run nothing more (`spec.terminate: true`, as `shoal terminate`): not
    even `runPolicy: always` nodes."""
    return await ask_to_end(api, namespace, name, "terminate")


async def _source(
    request: Request, api: KubeApi, namespace: str, name: str
) -> tuple[dict[str, Any], str]:
    """The Workflow to copy and where it was read from."""
    try:
        return await api.request("GET", workflows_path(namespace, name)), "the cluster"
    except ApiError as err:
        if err.status != 404:
            raise from_kube(err) from None
    handle = archive_handle(request.app)
    if handle is None:
        raise ApiProblem.of(404, "NotFound", f"workflow {name!r} not found in {namespace!r}")
    await require(request, api, Check("get", "workflows", namespace))
    from shoal.archive.objects import archived_object
    from shoal.archive.reader import find_run, get_run

    pool = await handle.pool()
    found = await query(find_run, pool, namespace, name)
    detail = await query(get_run, pool, found.uid) if found is not None else None
    if detail is None:
        raise ApiProblem.of(
            404, "NotFound", f"workflow {name!r} not found in {namespace!r} nor in the archive"
        )
    return archived_object(detail), f"the archive (run {detail.run.uid})"


@router.post(
    "/{namespace}/{name}/resubmit",
    status_code=201,
    response_model=ActionResult,
    response_model_by_alias=True,
)
async def resubmit_workflow(
    request: Request,
    api: Caller,
    namespace: Namespace,
    name: Name,
    body: Annotated[ResubmitRequest | None, Body()] = None,
) -> ActionResult:
    """A new Workflow from this one's spec and parameters (`parameters` override some),
    labelled `shoal.dev/resubmitted-from`; validated as `shoal submit` does (422)."""
    wanted = body or ResubmitRequest()
    source, origin = await _source(request, api, namespace, name)
    new = resubmission(
        source, wanted.parameters, new_name=wanted.name, generate_name=wanted.generate_name
    )
    try:
        validate_resubmission(new, wanted.parameters, f"workflow {namespace}/{name}")
    except InvalidWorkflow as err:
        raise invalid_manifest(err) from None
    created = await call(api, "POST", workflows_path(namespace), body=new)
    return ActionResult(
        metadata=meta(created), message=f"resubmitted from {name}, read from {origin}"
    )
