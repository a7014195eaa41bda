"""The operator's HTTP client for the API server: aiohttp, behind `kube/http_transport`.

Why aiohttp: kopf already depends on it, and its C-accelerated parser costs far less per
request and per streamed chunk than httpx's pure-Python stack (anyio scopes, h11, cookie
extraction, per-connection checks), which was most of the operator's CPU per fan-out
item. The session is made on first use, inside the event loop that uses it (aiohttp
binds a session to its loop); a later loop gets a session of its own.

Bounds kept from the httpx client: a connect timeout, a read timeout on short requests
(none on streams, which the callers bound), a pool limit, no cookies kept, TLS with the
kubeconfig's CA and client certificate. The proxy the environment names for the API
server (`HTTPS_PROXY`, `NO_PROXY`) is honoured as httpx did, read once per pool: aiohttp's
own `trust_env` looks it up, and `.netrc`, in a thread for every request (a tenth of the
requests' CPU), and `.netrc` credentials have no place beside the operator's token.
Nothing here logs a header.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp

from shoal.kube.http_transport import Answer, Unreachable, query

__all__ = ["AiohttpTransport", "env_proxy"]

FAILURES = (aiohttp.ClientError, OSError, TimeoutError)
"""What aiohttp raises for a connection that failed, broke or timed out."""


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY` unless `NO_PROXY`
    exempts its host), or None."""
    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    return proxy


class _Streamed:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status

    async def answer(self) -> Answer:
        try:
            body = await self._resp.read()
        except FAILURES as err:
            raise Unreachable(repr(err)) from err
        return Answer(self.status, self._resp.reason or "", body)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except FAILURES as err:
            raise Unreachable(repr(err)) from err


class AiohttpTransport:
    """One aiohttp connection pool: `limit` connections at most (None: no limit)."""

    def __init__(
        self,
        host: str,
        verify: ssl.SSLContext | bool,
        *,
        limit: int | None,
        connect_seconds: float,
        read_seconds: float | None,
        keepalive_seconds: float = 15.0,
    ) -> None:
        self._host = host.rstrip("/")
        self._ssl: ssl.SSLContext | bool = verify if isinstance(verify, ssl.SSLContext) else False
        self._limit = limit or 0
        self._keepalive = keepalive_seconds
        # `connect` covers a wait for a free connection, the TCP connect and the TLS
        # handshake; `sock_read` bounds each read, not the whole answer (streams: none).
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect_seconds * 3,
            sock_connect=connect_seconds,
            sock_read=read_seconds,
        )
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=0,
                ssl=self._ssl,
                keepalive_timeout=self._keepalive,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                proxy=env_proxy(self._host),
            )
            self._loop = loop
        return self._session

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        headers: dict[str, str],
        content: bytes | None,
    ) -> Answer:
        session = self._current()
        try:
            async with session.request(
                method, self._host + path, params=query(params), headers=headers, data=content
            ) as resp:
                body = await resp.read()
                return Answer(resp.status, resp.reason or "", body, resp.headers.get("Retry-After"))
        except FAILURES as err:
            raise Unreachable(repr(err)) from err

    @asynccontextmanager
    async def stream(
        self, path: str, *, params: Mapping[str, Any] | None, headers: dict[str, str]
    ) -> AsyncIterator[_Streamed]:
        session = self._current()
        try:
            resp = await session.get(self._host + path, params=query(params), headers=headers)
        except FAILURES as err:
            raise Unreachable(repr(err)) from err
        try:
            yield _Streamed(resp)
        finally:
            resp.release()

    async def aclose(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None
