"""`shoal server`: the REST API, authenticated and authorized by Kubernetes itself.

Each request is made to the API server with the caller's own bearer token, so RBAC
decides every read and write (docs/dashboard.md). `app` assembles the routers.
"""

__all__ = [
    "app",
    "crons",
    "errors",
    "headers",
    "identity",
    "local_app",
    "local_logs",
    "local_serve",
    "log_lines",
    "logs",
    "models",
    "params",
    "pool",
    "retry_route",
    "retrying",
    "submit",
    "ui_csrf",
    "ui_static",
    "workflows",
]
