"""One JSON document kept in a Lease's annotation, changed with optimistic concurrency.

The lock table (`shoal-locks`) and the memo cache (`shoal-memo`) of a namespace are each
one Lease (coordination.k8s.io) whose annotation holds the document: read whole, changed
by a pure function and written back with the `resourceVersion` it was read at; when
another runner (or another operator replica) wrote in between, the API server answers
409 and the change is made again on the new document. Every loop is bounded. A Lease,
not a ConfigMap: the operator never needs to create ConfigMaps (pods mount those), and a
Lease is what coordination objects are for. Anyone with rights on Leases in the namespace
could edit it, so what is read passes `core/jsonbounds` and the pure readers drop what
they do not recognise. Annotations hold at most 256 KiB in all.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any, TypeVar

from shoal.core import jsonbounds
from shoal.kube.api import ApiError, KubeApi

__all__ = ["MAX_DOCUMENT_CHARS", "ConflictLimit", "leases_path", "read_json", "update_json"]

T = TypeVar("T")
MAX_DOCUMENT_CHARS = 250 * 1024
"""A larger document is not read (it is replaced by the empty one on the next write)."""
MAX_CONFLICTS = 30


class ConflictLimit(Exception):
    """Others kept writing the Lease; the change was not made (the caller retries)."""


def leases_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base


def _annotation(name: str) -> str:
    return f"shoal.dev/{name}"


def _document(obj: dict[str, Any] | None, name: str) -> Any:
    text = ((obj or {}).get("metadata") or {}).get("annotations", {}).get(_annotation(name))
    if not isinstance(text, str) or len(text) > MAX_DOCUMENT_CHARS:
        return None
    try:
        return jsonbounds.loads(text)
    except ValueError:
        return None


async def read_json(api: KubeApi, namespace: str, name: str) -> Any:
    """The document, or None when the Lease (or its annotation) is not there."""
    try:
        obj = await api.get(leases_path(namespace, name))
    except ApiError as err:
        if err.status == 404:
            return None
        raise
    return _document(obj, name)


async def update_json(
    api: KubeApi,
    namespace: str,
    name: str,
    change: Callable[[Any], tuple[Any, T]],
    labels: dict[str, str],
) -> T:
    """Apply `change(document) -> (new document, result)` atomically; return the result.

    `change` may run several times (once per conflict) and must be pure."""
    path = leases_path(namespace, name)
    for _ in range(MAX_CONFLICTS):
        try:
            obj: dict[str, Any] | None = await api.get(path)
        except ApiError as err:
            if err.status != 404:
                raise
            obj = None
        document, result = change(_document(obj, name))
        text = json.dumps(document, separators=(",", ":"), allow_nan=False)
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {_annotation(name): text},
        }
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata}
        try:
            if obj is None:
                if await api.create(leases_path(namespace), body, contended=True) is not None:
                    return result
            else:
                metadata["resourceVersion"] = (obj.get("metadata") or {}).get("resourceVersion")
                await api.request("PUT", path, body=body)
                return result
        except ApiError as err:
            if err.status != 409:
                raise
        await asyncio.sleep(random.uniform(0.01, 0.2))  # a conflict: back off, read again
    raise ConflictLimit(f"{namespace}/{name}: {MAX_CONFLICTS} conflicting writes in a row")
