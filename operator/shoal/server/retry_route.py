"""`POST /api/v1/workflows/{namespace}/{name}/retry` (the transition: `retrying.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from shoal.kube.api import KubeApi
from shoal.server.identity import caller_api
from shoal.server.models import ActionResult, meta
from shoal.server.params import Name, Namespace
from shoal.server.retrying import retry_workflow
from shoal.server.workflows import ERRORS

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], responses=ERRORS)


@router.post("/{namespace}/{name}/retry", response_model=ActionResult, response_model_by_alias=True)
async def retry(
    api: Annotated[KubeApi, Depends(caller_api)], namespace: Namespace, name: Name
) -> ActionResult:
    """Run the failed nodes of a Failed or Stopped workflow again, keeping the rest."""
    obj, reset = await retry_workflow(api, namespace, name)
    return ActionResult(
        metadata=meta(obj), message=f"running again: {', '.join(reset)}", nodes=reset
    )
