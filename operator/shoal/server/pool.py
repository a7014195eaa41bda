"""One connection pool to the API server, shared by every caller, each request still
carrying only its own caller's token.

A client per request would pay a TLS handshake per request. Sharing connections is safe
for bearer tokens (each request authenticates on its own; the connection presents no
client certificate) as long as nothing else is shared: the pool keeps no cookies, so a
`Set-Cookie` from a proxy in front of the API server never rides along with the next
caller's request.
"""

from __future__ import annotations

import asyncio
import ssl
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from shoal.kube.api import MAX_IN_FLIGHT, Credentials, KubeApi
from shoal.kube.api_routes import RouteCounter
from shoal.kube.httpx_transport import REQUEST_TIMEOUT, STREAM_TIMEOUT, HttpxTransport

__all__ = ["CallerApi", "CallerPool"]


class CallerPool:
    """The server's connections to the API server (client auth mode)."""

    def __init__(
        self,
        host: str,
        verify: ssl.SSLContext | bool,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.host = host
        self.verify = verify
        self.gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.client = httpx.AsyncClient(
            base_url=host,
            verify=verify,
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            transport=transport,
        )
        self.transport = HttpxTransport(self.client)
        self.stream_transport = HttpxTransport(self.client, stream_timeout=STREAM_TIMEOUT)
        """The same connections, for log streams: no read timeout."""

    def api(self, token: str) -> CallerApi:
        return CallerApi(self, token)

    async def aclose(self) -> None:
        await self.client.aclose()


class CallerApi(KubeApi):
    """`KubeApi` acting as one caller, over the shared pool."""

    def __init__(self, pool: CallerPool, token: str) -> None:
        # Not KubeApi.__init__: it would open a connection pool of its own.
        self.creds = Credentials(pool.host, pool.verify, token, None)
        self.requests = 0
        self.writes = 0
        self._in_flight = pool.gate
        self._client = pool.transport
        self._streams = pool.stream_transport  # the server's log streams share the pool
        self.routes = RouteCounter()

    async def close(self) -> None:
        """Nothing to close: the pool outlives the request (it closes with the server)."""
