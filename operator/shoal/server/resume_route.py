"""`POST /api/v1/workflows/{namespace}/{name}/resume`: decide approval gates and lift
`spec.suspend`, as `shoal resume` does (the transition: `shoal.core.resume`).

Who decided is the caller as the API server authenticates them (a SelfSubjectReview sent
with the caller's own token; in `server` auth mode, the server's identity): never a name
the request body claims.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from shoal.api.limits import MAX_STRING_LENGTH
from shoal.core.resume import ResumeError, plan_resume
from shoal.core.timestamps import format_rfc3339
from shoal.kube.api import KubeApi, workflows_path
from shoal.kube.whoami import reviewed_name
from shoal.server.errors import ApiProblem
from shoal.server.identity import caller_api
from shoal.server.models import ActionResult, meta
from shoal.server.params import Name, Namespace
from shoal.server.workflows import ERRORS, call

__all__ = ["ResumeRequest", "router"]

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], responses=ERRORS)


class ResumeRequest(BaseModel):
    """What to decide; an empty body approves every waiting gate and lifts suspend."""

    node: str | None = Field(None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    reject: bool = False
    message: str = Field("", max_length=MAX_STRING_LENGTH)


@router.post(
    "/{namespace}/{name}/resume", response_model=ActionResult, response_model_by_alias=True
)
async def resume(
    api: Annotated[KubeApi, Depends(caller_api)],
    namespace: Namespace,
    name: Name,
    request: ResumeRequest | None = None,
) -> ActionResult:
    """Approve (or reject) the workflow's waiting approval gates, or one by `node`."""
    ask = request or ResumeRequest()
    path = workflows_path(namespace, name)
    obj = await call(api, "GET", path)
    by = await reviewed_name(api)
    try:
        plan = plan_resume(
            obj,
            node=ask.node,
            reject=ask.reject,
            message=ask.message,
            by=by,
            at=format_rfc3339(time.time()),
        )
    except ResumeError as err:
        raise ApiProblem.of(409, "NotResumable", str(err)) from None
    patched = await call(
        api, "PATCH", path, body=plan.patch, content_type="application/merge-patch+json"
    )
    verb = "rejected" if ask.reject else "approved"
    said = [f"{verb}: {', '.join(plan.decided)}"] if plan.decided else []
    if plan.unsuspended:
        said.append("resumed")
    return ActionResult(metadata=meta(patched), message="; ".join(said), nodes=list(plan.decided))
