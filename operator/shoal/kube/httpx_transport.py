"""`kube/http_transport.Transport` over an httpx client: the REST API server's shared
per-caller pool (`server/pool.py`, whose tests hand it a mock transport). The operator
and the CLI use `kube/aio_transport.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from shoal.kube.http_transport import Answer, Unreachable, query

__all__ = ["REQUEST_TIMEOUT", "STREAM_TIMEOUT", "HttpxTransport"]

REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
STREAM_TIMEOUT = httpx.Timeout(None, connect=10.0)
"""A followed log may stay quiet for as long as its job does."""


class _Streamed:
    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp
        self.status = resp.status_code

    async def answer(self) -> Answer:
        try:
            body = await self._resp.aread()
        except httpx.HTTPError as err:
            raise Unreachable(repr(err)) from err
        return Answer(self.status, self._resp.reason_phrase, body)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_bytes():
                yield chunk
        except httpx.HTTPError as err:
            raise Unreachable(repr(err)) from err


class HttpxTransport:
    """Requests through `client` (its pool, timeouts and base URL); streams with
    `stream_timeout` if given (several transports may share one client)."""

    def __init__(
        self, client: httpx.AsyncClient, *, stream_timeout: httpx.Timeout | None = None
    ) -> None:
        self.client = client
        self._stream_timeout = stream_timeout

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        headers: dict[str, str],
        content: bytes | None,
    ) -> Answer:
        try:
            resp = await self.client.request(
                method, path, content=content, params=query(params), headers=headers
            )
        except httpx.HTTPError as err:
            raise Unreachable(repr(err)) from err
        return Answer(
            resp.status_code, resp.reason_phrase, resp.content, resp.headers.get("Retry-After")
        )

    @asynccontextmanager
    async def stream(
        self, path: str, *, params: Mapping[str, Any] | None, headers: dict[str, str]
    ) -> AsyncIterator[_Streamed]:
        try:
            timeout = self._stream_timeout or httpx.USE_CLIENT_DEFAULT
            async with self.client.stream(
                "GET", path, params=query(params), headers=headers, timeout=timeout
            ) as resp:
                yield _Streamed(resp)
        except httpx.HTTPError as err:
            raise Unreachable(repr(err)) from err

    async def aclose(self) -> None:
        await self.client.aclose()
