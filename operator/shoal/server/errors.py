"""One error shape for every failure the API reports: `{code, message, field?, node?}`.

Clients (the dashboard, scripts) branch on `code` and show `message`; `field` and `node`
point into a submitted manifest as `shoal validate` does. Kubernetes' own refusals keep
their status (401, 403 naming the verb and resource, 404, 409) and message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shoal.core.validation import InvalidWorkflow
    from shoal.kube.api import ApiError

__all__ = ["ApiProblem", "ErrorBody", "from_kube", "install_handlers", "invalid_manifest"]

KUBE_CODES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
"""Kubernetes statuses passed to the caller as they are; any other becomes a 502."""
PASSED_THROUGH = frozenset({400, 401, 403, 404, 409, 410, 422, 429})


class ErrorBody(BaseModel):
    """What every non-2xx response holds."""

    code: str
    message: str
    field: str | None = None
    node: str | None = None
    line: int | None = None
    """Line and column in a submitted manifest (1-based), when known."""
    column: int | None = None
    problems: list[ErrorBody] | None = None
    """Every problem of an invalid manifest (the first is also the top-level one)."""


class ApiProblem(Exception):
    """A failure the handler turns into `status` and an `ErrorBody`."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{status} {body.code}: {body.message}")

    @classmethod
    def of(cls, status: int, code: str, message: str) -> ApiProblem:
        return cls(status, ErrorBody(code=code, message=message))


def from_kube(err: ApiError) -> ApiProblem:
    """Kubernetes' answer as ours: RBAC's 403 keeps its message, which names the verb and
    the resource (`cannot list resource "workflows" ... in the namespace "b"`)."""
    if err.status in PASSED_THROUGH:
        code = KUBE_CODES.get(err.status) or err.reason or "Error"
        message = str(err).split(": ", 1)[-1]
        return ApiProblem.of(err.status, code, message)
    return ApiProblem.of(502, "KubernetesUnavailable", f"the Kubernetes API failed: {err}")


def invalid_manifest(err: InvalidWorkflow) -> ApiProblem:
    """A 422 carrying every problem `shoal validate` would print, each with its node/field."""
    problems = [
        ErrorBody(
            code="Invalid",
            message=p.describe(),
            field=p.field,
            node=p.node,
            line=p.line,
            column=p.column,
        )
        for p in err.problems
    ]
    first = problems[0] if problems else ErrorBody(code="Invalid", message=str(err))
    return ApiProblem(422, first.model_copy(update={"problems": problems}))


async def _problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    body = exc.body.model_dump(exclude_none=True)
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _request_invalid(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's parameter errors, in our shape (the parameter is the field)."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
    body = ErrorBody(code="BadRequest", message=str(first.get("msg")), field=field)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=400)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    """Routing's own refusals (no such path, wrong method), in our shape."""
    assert isinstance(exc, HTTPException)
    code = KUBE_CODES.get(exc.status_code) or (
        "MethodNotAllowed" if exc.status_code == 405 else "Error"
    )
    body = ErrorBody(code=code, message=str(exc.detail))
    return JSONResponse(
        body.model_dump(exclude_none=True), exc.status_code, dict(exc.headers or {})
    )


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiProblem, _problem)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_invalid)
