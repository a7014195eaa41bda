"""A small asyncio client for the Kubernetes API, authenticated as one node.

Only what a kubelet needs: get/create/patch/delete, TokenRequest, and list+watch with
re-listing on expiry. Streaming watches run on httpx, so a watch is a coroutine rather
than a thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx

log = logging.getLogger(__name__)

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Kube:
    def __init__(self, server: str, ca: str, cert: str, key: str) -> None:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(cert, key)
        self._client = httpx.AsyncClient(
            base_url=server,
            verify=ctx,
            timeout=httpx.Timeout(30.0),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body)
        resp = await self._client.request(
            method, path, content=content, params=params, headers=headers
        )
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, resp.text)
        return dict(resp.json()) if resp.content else {}

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object at ``path``, or None if it does not exist."""
        try:
            return await self.request("GET", path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def watch(
        self, path: str, params: dict[str, str]
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield ("SYNC", list) after every (re)list, then ("ADDED"|"MODIFIED"|"DELETED", obj).

        A consumer treats SYNC as the full truth (objects missing from it are gone), so
        events lost while the watch was down cannot leave stale state behind.
        """
        backoff = 0.2
        while True:
            try:
                listing = await self.request("GET", path, params=params)
                yield "SYNC", listing
                rv: str | None = listing["metadata"]["resourceVersion"]
                while rv is not None:
                    query = {
                        **params,
                        "watch": "true",
                        "resourceVersion": rv,
                        "allowWatchBookmarks": "true",
                        "timeoutSeconds": "300",
                    }
                    timeout = httpx.Timeout(30.0, read=330.0)
                    async with self._client.stream(
                        "GET", path, params=query, timeout=timeout
                    ) as resp:
                        if resp.status_code >= 400:
                            raise ApiError(resp.status_code, (await resp.aread()).decode())
                        async for line in resp.aiter_lines():
                            if not line:
                                continue
                            event = json.loads(line)
                            kind, obj = event["type"], event["object"]
                            if kind == "ERROR":
                                if obj.get("code") == 410:
                                    rv = None  # too old: re-list
                                    break
                                raise ApiError(int(obj.get("code", 500)), json.dumps(obj))
                            rv = obj["metadata"]["resourceVersion"]
                            if kind != "BOOKMARK":
                                yield kind, obj
                backoff = 0.2
            except (httpx.HTTPError, ApiError) as err:
                log.warning("watch %s failed (%s); re-listing in %.1fs", path, err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
