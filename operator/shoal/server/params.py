"""Path and query parameters shared by the routes, each bounded and shaped so that nothing
a caller sends can change which Kubernetes path or selector is asked for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Continue",
    "Limit",
    "Name",
    "Namespace",
    "NamespaceFilter",
    "NodeName",
    "Selector",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
"""Every list is paged: no response holds more than this many objects."""

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"

Namespace = Annotated[str, Path(max_length=63, pattern=_DNS_LABEL)]
Name = Annotated[str, Path(max_length=253, pattern=_DNS_SUBDOMAIN)]
NodeName = Annotated[str, Path(max_length=63, pattern=_LABEL_VALUE)]
NamespaceFilter = Annotated[
    str | None,
    Query(max_length=63, pattern=_DNS_LABEL, description="one namespace (default: all)"),
]
Selector = Annotated[
    str | None,
    Query(alias="labelSelector", max_length=1024, description="a Kubernetes label selector"),
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="objects read per page")]
Continue = Annotated[
    str | None,
    Query(alias="continue", max_length=4096, description="the previous page's `continue`"),
]
