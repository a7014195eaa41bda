"""The ASGI application: the routers, the error shape, the security headers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from shoal.server import (
    actions,
    archive_routes,
    cron_actions,
    crons,
    logs,
    node_views,
    resume_route,
    retry_route,
    stream,
    stream_one,
    submit,
    workflows,
)
from shoal.server.errors import install_handlers
from shoal.server.headers import SecurityHeaders
from shoal.server.identity import Cluster
from shoal.server.lifecycle import shutdown
from shoal.server.ui_csrf import CsrfGuard
from shoal.server.ui_static import mount_ui

__all__ = ["OPENAPI_PATH", "create_app"]

OPENAPI_PATH = "/api/v1/openapi.json"


def create_app(cluster: Cluster) -> FastAPI:
    """The API, calling Kubernetes at `cluster` as each caller (or as itself in server mode)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await shutdown(app)
        await cluster.pool.aclose()

    app = FastAPI(
        lifespan=lifespan,
        title="Shoal API",
        version="v1",
        summary="Workflows and CronWorkflows, as the caller's Kubernetes RBAC allows.",
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
    )
    app.state.cluster = cluster
    install_handlers(app)
    for module in (workflows, submit, retry_route, resume_route, logs, crons):
        app.include_router(module.router)
    for extra in (actions, node_views, cron_actions, archive_routes, stream, stream_one):
        app.include_router(extra.router)
    app.add_middleware(CsrfGuard)
    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    mount_ui(app)
    return app
