"""Waiting on cluster state with watches and a deadline (never a bare sleep).

``wait_for(core.list_namespaced_pod, ns, predicate=..., timeout=60)`` watches the list
until an object satisfies the predicate and returns that object. A watch without a
resourceVersion first replays what exists, so state reached before the call is seen.
On timeout the error shows the last state observed, which is what one needs to debug.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch


def _summary(obj: Any) -> str:
    if obj is None:
        return "nothing"
    status = getattr(obj, "status", None)
    name = getattr(getattr(obj, "metadata", None), "name", "?")
    try:
        text = json.dumps(status.to_dict() if status is not None else {}, default=str)
    except Exception:
        text = repr(status)
    return f"{name}: {text[:1500]}"


def wait_for(
    list_func: Callable[..., Any],
    *args: Any,
    predicate: Callable[[Any], bool],
    timeout: float = 60.0,
    description: str = "the condition",
    **kwargs: Any,
) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {description}; "
                f"last seen {_summary(last)}"
            )
        stream = watch.Watch()
        for event in stream.stream(
            list_func,
            *args,
            timeout_seconds=max(1, int(remaining)),
            _request_timeout=remaining + 5,
            **kwargs,
        ):
            obj = event["object"]
            if event["type"] == "DELETED":
                continue
            last = obj
            if predicate(obj):
                stream.stop()
                return obj
            if time.monotonic() >= deadline:
                stream.stop()
                break


def wait_gone(
    list_func: Callable[..., Any],
    *args: Any,
    timeout: float = 60.0,
    description: str = "the objects to be deleted",
    **kwargs: Any,
) -> None:
    """Wait until the (label/field-selected) list is empty."""
    deadline = time.monotonic() + timeout
    while True:
        listing = list_func(*args, **kwargs)
        names = {item.metadata.name for item in listing.items}
        if not names:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {description}: {names}"
            )
        stream = watch.Watch()
        for event in stream.stream(
            list_func,
            *args,
            resource_version=listing.metadata.resource_version,
            timeout_seconds=max(1, int(remaining)),
            _request_timeout=remaining + 5,
            **kwargs,
        ):
            name = event["object"].metadata.name
            if event["type"] == "DELETED":
                names.discard(name)
            else:
                names.add(name)
            if not names:
                stream.stop()
                return
            if time.monotonic() >= deadline:
                stream.stop()
                break


def pod_phase(*phases: str) -> Callable[[Any], bool]:
    return lambda pod: pod.status is not None and pod.status.phase in phases


def job_condition(kind: str) -> Callable[[Any], bool]:
    def check(job: Any) -> bool:
        conditions = (job.status and job.status.conditions) or []
        return any(c.type == kind and c.status == "True" for c in conditions)

    return check


def wait_for_log_line(
    core: Any,
    namespace: str,
    pod: str,
    line: str,
    *,
    container: str | None = None,
    timeout: float = 60.0,
) -> None:
    """Follow a running pod's log until ``line`` appears (the container says it is ready)."""
    kwargs = {"container": container} if container else {}
    resp = core.read_namespaced_pod_log(
        pod, namespace, follow=True, _preload_content=False, _request_timeout=timeout, **kwargs
    )
    seen: list[str] = []
    try:
        buffer = b""
        for chunk in resp.stream(1024):
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                seen.append(raw.decode(errors="replace"))
                if seen[-1] == line:
                    return
    finally:
        resp.release_conn()
    raise AssertionError(f"pod {pod} never logged {line!r}; it logged {seen[-20:]}")
