"""A thin asyncio Kubernetes REST adapter: plain dicts in and out, over aiohttp.

Why not a generated client: the operator handles thousands of Job and pod objects and
streams every worker's log; it needs raw JSON (no model validation per object), explicit
timeouts on every request, and streaming that is an `async for` over lines. Credentials
come from the `kubernetes` package's loaders (kubeconfig or in-cluster), so every auth
form that kubectl users rely on keeps working. The HTTP client is a `Transport`
(`kube/http_transport.py`): aiohttp here (`kube/aio_transport.py`), the REST API's
per-caller pool over httpx (`kube/httpx_transport.py`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shoal.core import jsonbounds
from shoal.kube import write_guard
from shoal.kube.aio_transport import AiohttpTransport
from shoal.kube.api_routes import RouteCounter
from shoal.kube.http_transport import Answer, Transport, Unreachable
from shoal.linesplit import CUT_NOTE, bounded_lines

log = logging.getLogger(__name__)

CONNECT_SECONDS = 10.0
READ_SECONDS = 30.0
"""Longest wait for each read of a short request's answer (streams: no limit)."""
MAX_LOG_LINE_BYTES = 1024 * 1024
"""The longest log line the operator holds; longer ones are cut (docs/protocol.md)."""
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
RETRIES = 5
MAX_CONNECTIONS = 100
"""Connections for short requests (watches and log streams have their own pool)."""
MAX_IN_FLIGHT = 50
"""Short requests in flight at once (watches and log streams are not counted)."""
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
Reply = Literal["bounded", "own", "ignored"]
"""How a response body is decoded. `bounded` (the default: anything a tenant may have
written) goes through `jsonbounds.loads`, depth and size cut; `own`, an object Shoal
built and a schema bounds (a Job it created), only through the C decoder, the bounded
one where that gives up; `ignored` (deletions, the status patch) is not decoded at all.
Skipping the cut pass where nothing reads the answer was a tenth of the operator's CPU
per fan-out item (docs/benchmarks.md)."""


class ApiError(Exception):
    """A request the API server refused; `status` and `reason` as it reported them."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason}: {message}")


@dataclass(frozen=True, slots=True)
class Credentials:
    host: str
    ssl_context: ssl.SSLContext | bool
    token: str | None
    token_file: Path | None


def load_credentials(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    """In-cluster service-account credentials when running in a pod, else the kubeconfig."""
    from kubernetes import client, config

    cfg = client.Configuration()
    token_file: Path | None = None
    if kubeconfig is None and IN_CLUSTER_TOKEN.exists():
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        token_file = IN_CLUSTER_TOKEN
    else:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)  # type: ignore[no-untyped-call]
    verify: ssl.SSLContext | bool
    if cfg.verify_ssl:
        verify = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.cert_file:
            verify.load_cert_chain(cfg.cert_file, cfg.key_file)
    else:
        verify = False
    token = None
    auth = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    if auth:
        token = auth.removeprefix("Bearer ").strip()
    return Credentials(cfg.host.rstrip("/"), verify, token, token_file)


class KubeApi:
    """The requests Shoal makes, each with a timeout and bounded retries on transient errors."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.requests = 0
        """Requests sent (for metrics and the write-count benchmark)."""
        self.writes = 0
        self.already_exists = 0
        """Creations answered AlreadyExists (zero in a healthy shard hand-off)."""
        self.routes = RouteCounter()
        """Requests by verb and route (metric `shoal_api_requests_by_route`)."""
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        """Requests waiting for a connection queue here, not in the client's pool."""
        # Every connection may stay: with fewer kept than are in use at a fan-out's pace,
        # the rest closed on release and reopened (a TLS handshake) moments later.
        self._client: Transport = AiohttpTransport(
            creds.host,
            creds.ssl_context,
            limit=MAX_CONNECTIONS,
            connect_seconds=CONNECT_SECONDS,
            read_seconds=READ_SECONDS,
        )
        # Watches and log streams hold a connection each for as long as they run: in
        # their own pool, so a short request never waits for one a stream holds.
        self._streams: Transport = AiohttpTransport(
            creds.host,
            creds.ssl_context,
            limit=None,
            connect_seconds=CONNECT_SECONDS,
            read_seconds=None,
            keepalive_seconds=5.0,
        )

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeApi:
        return cls(load_credentials(kubeconfig, context))

    async def close(self) -> None:
        await self._client.aclose()
        await self._streams.aclose()

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self.creds.token
        if self.creds.token_file is not None:
            token = self.creds.token_file.read_text().strip()  # rotated by the kubelet
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        reply: Reply = "bounded",
    ) -> dict[str, Any]:
        """One request, retried with backoff on 429/5xx and connection errors (bounded);
        its answer decoded as `reply` says."""
        delay = 0.1
        for attempt in range(RETRIES):
            if method != "GET":  # each attempt: a retry may come after the renew deadline
                body = write_guard.checked(method, path, body)
            data = json.dumps(body).encode() if body is not None else None
            self.requests += 1
            self.routes.add(method, path)
            if method != "GET":
                self.writes += 1
            try:
                async with self._in_flight:
                    resp = await self._client.send(
                        method,
                        path,
                        content=data,
                        params=params,
                        headers=self._headers(content_type if data is not None else None),
                    )
            except Unreachable as err:
                if attempt == RETRIES - 1:
                    raise _unreachable(method, path, err) from err
            else:
                if resp.status < 400:
                    return _decode(resp.body, reply)
                if resp.status not in TRANSIENT_STATUS or attempt == RETRIES - 1:
                    raise _error(resp)
                retry_after = resp.retry_after
                if retry_after and retry_after.isdigit():
                    delay = max(delay, min(float(retry_after), 10.0))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        return await self.request("GET", path, params=params or None)

    async def create(
        self, path: str, body: dict[str, Any], *, contended: bool = False, reply: Reply = "bounded"
    ) -> dict[str, Any] | None:
        """POST; None when the object already exists (creation is idempotent).

        `contended`: every replica creates this object when it finds it missing (a shared
        Lease), so losing that race is expected and not counted in `already_exists`,
        which counts only the clashes a healthy shard hand-off never has.
        """
        try:
            return await self.request("POST", path, body=body, reply=reply)
        except ApiError as err:
            if err.status == 409 and err.reason == "AlreadyExists":
                if contended:
                    return None
                self.already_exists += 1
                name = body.get("metadata", {}).get("name", "?")
                log.info("create %s %s: already exists", path, name)
                return None
            raise

    async def delete(self, path: str, *, propagation: str = "Background") -> bool:
        """DELETE; False when it was already gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            await self.request("DELETE", path, body=body, reply="ignored")
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def delete_collection(
        self, path: str, label_selector: str, *, propagation: str = "Background"
    ) -> None:
        """DELETE every object under `path` that `label_selector` matches: one request."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        # The answer lists every deleted object in full: decoded, it was read by no one.
        params = {"labelSelector": label_selector}
        await self.request("DELETE", path, body=body, params=params, reply="ignored")

    async def merge_patch(
        self, path: str, body: dict[str, Any], *, reply: Reply = "bounded"
    ) -> dict[str, Any]:
        """A JSON merge patch; the patched object (`{}` with `reply="ignored"`)."""
        return await self.request(
            "PATCH", path, body=body, content_type="application/merge-patch+json", reply=reply
        )

    async def lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        """Stream a response line by line (pod logs with follow, watches); no overall
        timeout, over the pool kept for streams.

        A pod's log is untrusted: a line over `MAX_LOG_LINE_BYTES` is yielded cut (with a
        note) as soon as that much of it is in, and the rest of it is dropped, so a line
        that never ends costs bounded memory.
        """
        async for line in self._lines(self._streams, path, params):
            yield line

    async def short_lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        """`lines` of an answer that ends by itself (a finished container's whole log),
        over the short requests' kept-alive pool with their timeouts; bounded alike."""
        async for line in self._lines(self._client, path, params):
            yield line

    async def _lines(
        self, client: Transport, path: str, params: dict[str, Any]
    ) -> AsyncIterator[str]:
        self.requests += 1
        self.routes.add("GET", path, watch=params.get("watch") == "true")
        try:
            async with client.stream(path, params=params, headers=self._headers()) as resp:
                if resp.status >= 400:
                    raise _error(await resp.answer())
                async for data, cut in bounded_lines(resp.chunks(), MAX_LOG_LINE_BYTES):
                    line = data.decode("utf-8", errors="replace").rstrip("\n")
                    if line.endswith("\r"):
                        line = line[:-1]
                    yield line + CUT_NOTE.format(limit=MAX_LOG_LINE_BYTES) if cut else line
        except Unreachable as err:
            raise _unreachable("GET", path, err) from err

    async def text(self, path: str, **params: Any) -> str:
        """A whole text response (a terminated pod's complete log)."""
        self.requests += 1
        self.routes.add("GET", path)
        try:
            resp = await self._client.send(
                "GET", path, params=params, headers=self._headers(), content=None
            )
        except Unreachable as err:
            raise _unreachable("GET", path, err) from err
        if resp.status >= 400:
            raise _error(resp)
        return resp.body.decode("utf-8", errors="replace")


def _decode(content: bytes, reply: Reply) -> dict[str, Any]:
    if not content or reply == "ignored":
        return {}
    if reply == "own":
        try:
            value: dict[str, Any] = json.loads(content)
        except RecursionError:
            return jsonbounds.loads(content)  # type: ignore[no-any-return]
        return value
    return jsonbounds.loads(content)  # type: ignore[no-any-return]


def _unreachable(method: str, path: str, err: Unreachable) -> ApiError:
    """The API server could not be reached (status 0): what the callers catch."""
    return ApiError(0, "Unreachable", f"{method} {path}: {err}")


def _error(resp: Answer) -> ApiError:
    try:
        doc = jsonbounds.loads(resp.body)
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    return ApiError(
        resp.status,
        str(doc.get("reason") or resp.reason),
        str(doc.get("message") or resp.body[:500].decode("utf-8", errors="replace")),
    )


# Paths, so callers never assemble URLs by hand.


def jobs_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    return f"{base}/{name}" if name else base


def pods_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/pods"
    return f"{base}/{name}" if name else base


def service_accounts_path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    return f"{base}/{name}" if name else base


def workflows_path(namespace: str | None = None, name: str | None = None) -> str:
    base = "/apis/shoal.dev/v1alpha1"
    base = f"{base}/namespaces/{namespace}/workflows" if namespace else f"{base}/workflows"
    return f"{base}/{name}" if name else base
