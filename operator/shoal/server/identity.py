"""Whose identity each request to Kubernetes carries.

`client` mode (the default, Argo's model): every call is made with the caller's own
bearer token, over a connection that presents no client certificate of the server's, so
the API server authenticates the caller and RBAC decides every read and write. The
server's identity is never used for user data. `server` mode (local development only)
uses the server's kubeconfig for everyone.

The server's own identity serves one thing in client mode: the shared watch that feeds
live streams (`informer.py`), whose every event is authorized per caller before it is
sent (`access.py`).
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum

from fastapi import Request

from shoal.kube.api import IN_CLUSTER_TOKEN, Credentials, KubeApi, load_credentials
from shoal.server.errors import ApiProblem, ErrorBody
from shoal.server.pool import CallerPool

__all__ = [
    "AuthMode",
    "Cluster",
    "bearer_token",
    "caller_api",
    "caller_key",
    "load_cluster",
    "open_caller",
]

MAX_TOKEN_LENGTH = 16 * 1024
"""Longer than any service-account or OIDC token; more is refused, not forwarded."""


class AuthMode(StrEnum):
    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class Cluster:
    """Where the API server is, how to trust it, and (server mode only) our own identity."""

    host: str
    verify: ssl.SSLContext | bool
    mode: AuthMode
    own: Credentials | None = None
    watcher: Credentials | None = field(default=None, repr=False)
    """The server's own identity, for the shared watch only (never for a caller's request)."""
    archive_dsn: str | None = field(default=None, repr=False)
    """The PostgreSQL archive (never logged or shown), or None: live objects only."""
    pool: CallerPool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pool", CallerPool(self.host, self.verify))

    def for_token(self, token: str) -> KubeApi:
        """A client that authenticates as the holder of `token` and as nobody else."""
        return self.pool.api(token)


def load_cluster(
    mode: AuthMode, kubeconfig: str | None, context: str | None, archive_dsn: str | None = None
) -> Cluster:
    """The API server's address and CA from the kubeconfig (or the pod's service account);
    the client certificate or token there acts for callers only in server mode."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if kubeconfig is None and IN_CLUSTER_TOKEN.exists():
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)  # type: ignore[no-untyped-call]
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.verify_ssl else False
    )
    watcher = load_credentials(kubeconfig, context)
    own = watcher if mode is AuthMode.SERVER else None
    return Cluster(cfg.host.rstrip("/"), verify, mode, own, watcher, archive_dsn)


def bearer_token(request: Request) -> str:
    """The caller's token from `Authorization: Bearer`, or a 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("a Kubernetes bearer token is required (Authorization: Bearer)")
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise _unauthorized("the bearer token is malformed")
    return token


def _unauthorized(message: str) -> ApiProblem:
    return ApiProblem(401, ErrorBody(code="Unauthorized", message=message))


def caller_key(request: Request) -> str:
    """Who the caller is, for caches: the SHA-256 of their token (never the token)."""
    cluster: Cluster = request.app.state.cluster
    if cluster.mode is AuthMode.SERVER and cluster.own is not None:
        return "server-mode"
    return hashlib.sha256(bearer_token(request).encode()).hexdigest()


def open_caller(request: Request) -> KubeApi:
    """A new Kubernetes client acting as this request's caller (the caller closes it)."""
    cluster: Cluster = request.app.state.cluster
    if cluster.mode is AuthMode.SERVER and cluster.own is not None:
        return KubeApi(cluster.own)
    return cluster.for_token(bearer_token(request))


async def caller_api(request: Request) -> AsyncIterator[KubeApi]:
    """FastAPI dependency: the Kubernetes client acting as this request's caller."""
    api = open_caller(request)
    try:
        yield api
    finally:
        await api.close()
