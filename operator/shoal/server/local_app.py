"""`shoal run --ui`'s API: the routes the dashboard reads, answered from a local run.

Read-only and without authentication (it listens on loopback only: local_serve.py). The
shapes are `shoal server`'s own (server/models.py, server/logs.py): a Workflow object is
built from the executor's live state, rendered as the operator renders a status, then
read by the same `workflow_summary`/`workflow_detail`. The web dashboard is mounted at
`/` as `shoal server` mounts it (server/ui_static.py); `GET /api/v1/session` tells the
page that no token is needed here.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import StreamingResponse

from shoal.core.compiled import CompiledWorkflow
from shoal.core.state import RunState
from shoal.core.status import render_status
from shoal.server.errors import ApiProblem, install_handlers
from shoal.server.headers import SecurityHeaders
from shoal.server.local_logs import NodeLog, chosen, log_page, pod_name, read_tail
from shoal.server.logs import DEFAULT_TAIL, MAX_FOLLOW_SECONDS, MAX_TAIL, LogPage
from shoal.server.models import WorkflowDetail, WorkflowPage, workflow_detail, workflow_summary
from shoal.server.params import Name, Namespace, NamespaceFilter, NodeName
from shoal.server.ui_static import mount_ui
from shoal.server.workflows import ERRORS

__all__ = ["FOLLOW_POLL_SECONDS", "LocalRun", "create_local_app"]

FOLLOW_POLL_SECONDS = 0.2
"""How often a followed log file is read again for new lines."""


@dataclass(frozen=True, slots=True)
class LocalRun:
    """One local run as the API sees it: live state, where its logs are, when it began."""

    wf: CompiledWorkflow
    state: Callable[[], RunState]
    log_path: Callable[[str], Path]
    created_at: str

    def body(self) -> dict[str, Any]:
        """The run as a Workflow object (metadata, spec, status), as the API reads one."""
        meta = self.wf.meta
        status = render_status(self.wf, self.state(), limits=False)
        return {
            "metadata": {
                "namespace": meta.namespace,
                "name": meta.name,
                "uid": meta.uid,
                "labels": dict(meta.labels),
                "creationTimestamp": self.created_at,
            },
            "spec": self.wf.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
            "status": status.model_dump(by_alias=True, exclude_none=True, mode="json"),
        }

    def check(self, namespace: str, name: str, node: str | None = None) -> None:
        meta = self.wf.meta
        if (namespace, name) != (meta.namespace, meta.name):
            raise ApiProblem.of(404, "NotFound", f"no workflow {namespace}/{name} in this run")
        if node is not None and node not in self.wf.nodes:
            raise ApiProblem.of(404, "NotFound", f"workflow {name} has no node {node!r}")


def create_local_app(run: LocalRun, *, ui: bool = True) -> FastAPI:
    """The read-only API over `run`, and the dashboard at `/` unless `ui` is False."""
    app = FastAPI(
        title="Shoal API (local run)",
        version="v1",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    install_handlers(app)
    app.include_router(_router(run))
    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/session", include_in_schema=False)
    async def session() -> dict[str, bool]:
        return {"authRequired": False}

    if ui:
        mount_ui(app)
    return app


def _router(run: LocalRun) -> APIRouter:
    router = APIRouter(prefix="/api/v1/workflows", tags=["local"], responses=ERRORS)

    @router.get("", response_model=WorkflowPage, response_model_by_alias=True)
    async def list_workflows(
        namespace: NamespaceFilter = None,
        phase: Annotated[str | None, Query(max_length=32)] = None,
        name_prefix: Annotated[str | None, Query(alias="namePrefix", max_length=253)] = None,
    ) -> WorkflowPage:
        """This run, unless the filters leave it out."""
        row = workflow_summary(run.body())
        keep = (
            namespace in (None, row.metadata.namespace)
            and phase in (None, row.phase)
            and row.metadata.name.startswith(name_prefix or "")
        )
        return WorkflowPage(items=[row] if keep else [], **{"continue": None})

    @router.get("/{namespace}/{name}", response_model=WorkflowDetail, response_model_by_alias=True)
    async def get_workflow(namespace: Namespace, name: Name) -> WorkflowDetail:
        """The run with its typed status, as `shoal run -o json` would end it."""
        run.check(namespace, name)
        return workflow_detail(run.body())

    @router.get("/{namespace}/{name}/nodes/{node}/log", response_model=LogPage)
    async def node_log(
        request: Request,
        namespace: Namespace,
        name: Name,
        node: NodeName,
        item: Annotated[int | None, Query(ge=0)] = None,
        attempt: Annotated[int | None, Query(ge=1)] = None,
        tail: Annotated[int, Query(ge=1, le=MAX_TAIL)] = DEFAULT_TAIL,
        follow: bool = False,
        seconds: Annotated[float, Query(gt=0, le=MAX_FOLLOW_SECONDS)] = 60.0,
    ) -> LogPage | StreamingResponse:
        """The node's log lines by attempt; with `follow`, one attempt's as SSE."""
        run.check(namespace, name, node)
        path = run.log_path(node)
        if not path.is_file():
            raise ApiProblem.of(404, "NotFound", f"node {node!r} has no log (not started)")
        text, offset, cut = read_tail(path)
        fan_out = run.wf.nodes[node].fan_out
        if not follow:
            page = log_page(node, text, fan_out, item, attempt, tail)
            return page.model_copy(update={"truncated": page.truncated or cut})
        follower = _Follower(node, lambda: run.log_path(node), fan_out, offset)
        for line in text.splitlines():
            follower.log.feed(line, fan_out)
        keys = chosen(follower.log, item, attempt)
        if not keys:
            raise ApiProblem.of(404, "NotFound", f"node {node!r} has no such attempt")
        if len(keys) > 1:
            raise ApiProblem.of(400, "BadRequest", "follow reads one attempt: name an item")
        stream = follower.stream(request, keys[0], tail, seconds, run.state)
        return StreamingResponse(stream, media_type="text/event-stream")

    return router


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


class _Follower:
    """Tails one node's log file for one attempt, until it ends or the deadline."""

    def __init__(self, node: str, path: Callable[[], Path], fan_out: bool, offset: int) -> None:
        self.node, self.path, self.fan_out, self.offset = node, path, fan_out, offset
        self.log = NodeLog()

    def _new_lines(self) -> list[str]:
        """Complete lines written since the last read (`path()` flushes the writer's)."""
        with self.path().open("rb") as file:
            file.seek(self.offset)
            data = file.read(1024 * 1024)
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end].decode("utf-8", "replace").splitlines()

    async def stream(
        self,
        request: Request,
        key: tuple[int, int],
        tail: int,
        seconds: float,
        state: Callable[[], RunState],
    ) -> AsyncIterator[str]:
        pod = pod_name(self.node, key)
        for text in self.log.lines[key][-tail:]:
            yield _event("line", {"pod": pod, "item": key[0], "text": text})
        deadline = time.monotonic() + seconds
        reason = "eof"
        while key not in self.log.ended:
            if time.monotonic() >= deadline:
                reason = "deadline"
                break
            if await request.is_disconnected():
                return
            lines = self._new_lines()
            for line in lines:
                fed = self.log.feed(line, self.fan_out)
                if fed is not None and fed[0] == key:
                    yield _event("line", {"pod": pod, "item": key[0], "text": fed[1]})
            if not lines:
                if state().phase.finished:
                    break
                await asyncio.sleep(FOLLOW_POLL_SECONDS)  # a file has no change event here
        yield _event("end", {"reason": reason})
