"""`shoal server`: serve the REST API (docs/dashboard.md), on loopback unless told.

In the default `client` auth mode every request must carry the caller's Kubernetes
bearer token and is made to the API server as that caller. `--auth-mode=server` makes
every request with the server's own kubeconfig identity: for local development only, so
it refuses any address but loopback and says so loudly.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from shoal.cli.common import EXIT_INVALID, database_args, resolve_database

__all__ = ["configure", "is_loopback", "serve"]

LOG = logging.getLogger("shoal.server")


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal server`'s arguments and handler."""
    p.description = (
        "Serve the REST API under /api/v1 (OpenAPI at /api/v1/openapi.json). Each request "
        "is made to Kubernetes with the caller's bearer token, so RBAC decides."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=2746, help="port (default 2746; 0: any free)")
    p.add_argument(
        "--auth-mode",
        choices=("client", "server"),
        default="client",
        help="client: act as each caller's token (default); server: act as this "
        "process's own identity, for local development on loopback only",
    )
    p.add_argument("--kubeconfig", help="kubeconfig (default: KUBECONFIG, or in-cluster)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--log-level", default="INFO", help="log level (default INFO)")
    database_args(p, "read for archived runs and their logs (as the operator's flag)")
    p.set_defaults(handler=serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from shoal.server.app import create_app
    from shoal.server.identity import AuthMode, load_cluster

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    mode = AuthMode(args.auth_mode)
    if mode is AuthMode.SERVER:
        if not is_loopback(args.host):
            print(
                f"shoal server: --auth-mode=server refuses to bind {args.host}: anyone who "
                "reaches it would act as this process's identity. Use loopback.",
                file=sys.stderr,
            )
            return EXIT_INVALID
        LOG.warning(
            "AUTH MODE SERVER: every request acts as this process's own Kubernetes identity, "
            "whoever sends it. For local development only; never expose this port."
        )
    dsn = resolve_database(args)
    LOG.info("archive: %s", "configured" if dsn else "none (live objects only)")
    cluster = load_cluster(mode, args.kubeconfig, args.context, dsn)
    config = uvicorn.Config(
        create_app(cluster),
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0
