"""Which kind of request a Kubernetes API call is, as a bounded metric label.

`shoal_api_requests_by_route{route}` counts the operator's requests by verb and route
(the resource and subresource, names left out: `POST jobs`, `GET pods/{name}/log`,
`PATCH workflows/{name}/status`, `WATCH pods`), so "how many requests does one fan-out
item cost, and which" is a metrics query and a `bench/cluster.py` column, not a guess
from a profile. Routes come from the operator's own code paths, never from a name a
tenant chose; still, at most `MAX_ROUTES` distinct ones are kept (then `other`).
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

__all__ = ["MAX_ROUTES", "OTHER", "RouteCounter", "route"]

MAX_ROUTES = 64
"""Distinct (verb, route) pairs counted; later ones count as `OTHER`."""
OTHER = ("OTHER", "other")


def route(method: str, path: str, *, watch: bool = False) -> tuple[str, str]:
    """(verb, route) of a request: `/apis/batch/v1/namespaces/n/jobs/j` → ("GET", "jobs/{name}").

    A collection's path is its resource; an object's adds `{name}`; a subresource follows.
    A watch (`watch=true`) is verb WATCH, as kubectl's audit log calls it.
    """
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return (method.upper(), "other")
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # a namespaced resource: the namespace is not part of the route
    shape = rest[:1] + ["{name}"] * (len(rest) >= 2) + rest[2:3]
    return ("WATCH" if watch else method.upper(), "/".join(shape) or "other")


class _Settable(Protocol):
    def set(self, value: float) -> None: ...


class _Labelled(Protocol):
    def labels(self, route: str) -> _Settable: ...


class RouteCounter:
    """Requests counted by (verb, route), bounded to `MAX_ROUTES` pairs."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, method: str, path: str, *, watch: bool = False) -> None:
        key = route(method, path, watch=watch)
        if key not in self.counts and len(self.counts) >= MAX_ROUTES:
            key = OTHER
        self.counts[key] += 1

    def publish(self, gauge: _Labelled) -> None:
        """Set a gauge labelled `route` ("POST jobs") to the counts so far (kube/metrics)."""
        for (verb, path), count in self.counts.items():
            gauge.labels(f"{verb} {path}").set(count)
