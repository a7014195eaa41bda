"""The poll trigger's I/O: read the headers Secret, GET the URL within limits.

One `httpx.AsyncClient` serves every CronWorkflow of the operator (connection pooling,
one set of sockets). Every request has a deadline for the whole exchange, the body is read
only up to `maxBodyBytes`, and redirects are not followed (a redirect could carry the
Secret's headers to another host). Nothing here logs or returns a header value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json

import httpx

from shoal.api.common import KeyRef
from shoal.cron.poll import Failure, Outcome, Response
from shoal.kube.api import ApiError, KubeApi

USER_AGENT = "shoal-operator (CronWorkflow poll)"


class HeadersError(Exception):
    """The headers Secret is missing or malformed (the message never holds a value)."""


def secrets_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets/{name}"


async def load_headers(api: KubeApi, namespace: str, ref: KeyRef) -> dict[str, str]:
    """The JSON object of headers in `ref`'s Secret key; {} if optional and missing."""
    where = f"spec.poll.headersFrom: Secret {ref.name!r} key {ref.key!r}"
    try:
        secret = await api.get(secrets_path(namespace, ref.name))
    except ApiError as err:
        if err.status == 404 and ref.optional:
            return {}
        raise HeadersError(f"{where}: cannot read the Secret ({err.status} {err.reason})") from None
    encoded = (secret.get("data") or {}).get(ref.key)
    if encoded is None:
        if ref.optional:
            return {}
        raise HeadersError(f"{where}: no such key")
    try:
        doc = json.loads(base64.b64decode(encoded))
    except (binascii.Error, ValueError):
        doc = None
    if not isinstance(doc, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in doc.items()
    ):
        raise HeadersError(f"{where}: must hold a JSON object of header names to strings")
    return doc


class Fetcher:
    """GETs for every poll trigger of this operator, through one client."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport  # tests answer in process
        self._client: httpx.AsyncClient | None = None

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:  # created on first use, inside the operator's loop
            limits = httpx.Limits(max_connections=50, max_keepalive_connections=10)
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                limits=limits,
                headers={"User-Agent": USER_AGENT},
                transport=self._transport,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(
        self, url: str, headers: dict[str, str], deadline: float, max_bytes: int
    ) -> Outcome:
        """One GET within `deadline` seconds in all: a Response (body None when over
        `max_bytes`) or a Failure."""
        client = self._get_client()
        try:
            async with asyncio.timeout(deadline):
                async with client.stream("GET", url, headers=headers, timeout=deadline) as resp:
                    return await _read(resp, max_bytes)
        except TimeoutError:
            return Failure(f"no answer within timeoutSeconds ({deadline:g})")
        except httpx.HTTPError as err:
            detail = str(err) or "no detail"
            return Failure(f"{type(err).__name__}: {detail}")


async def _read(resp: httpx.Response, max_bytes: int) -> Response:
    headers = {k.lower(): v for k, v in resp.headers.items()}
    if not 200 <= resp.status_code < 300:
        return Response(resp.status_code, headers, b"", 0)  # its body is not needed
    announced = resp.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > max_bytes:
        return Response(resp.status_code, headers, None, int(announced))
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            return Response(resp.status_code, headers, None, size)
        chunks.append(chunk)
    return Response(resp.status_code, headers, b"".join(chunks), size)
