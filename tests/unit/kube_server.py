"""A `KubeApi` pointed at a local aiohttp server: the operator's own HTTP client, tested
over a real socket rather than a mock of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer

from shoal.kube.api import Credentials, KubeApi

__all__ = ["api_answering", "api_serving"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def api_serving(handler: Handler) -> AsyncIterator[KubeApi]:
    """A KubeApi whose every request `handler` answers; both closed on exit."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app)
    await server.start_server()
    api = KubeApi(Credentials(str(server.make_url("")).rstrip("/"), False, "t", None))
    try:
        yield api
    finally:
        await api.close()
        await server.close()


def api_answering(body: bytes, status: int = 200) -> AbstractAsyncContextManager[KubeApi]:
    """A KubeApi whose every request gets this status and body."""

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, body=body, content_type="application/json")

    return api_serving(handler)
