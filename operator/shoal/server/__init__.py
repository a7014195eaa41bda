"""`shoal server`: the REST API, authenticated and authorized by Kubernetes itself.

Each request is made to the API server with the caller's own bearer token, so RBAC
decides every read and write (docs/dashboard.md). `app` assembles the routers.
"""

__all__ = [
    "access",
    "actions",
    "app",
    "archive_db",
    "archive_routes",
    "cron_actions",
    "crons",
    "errors",
    "headers",
    "identity",
    "informer",
    "lifecycle",
    "local_app",
    "local_logs",
    "local_serve",
    "log_lines",
    "logs",
    "models",
    "node_views",
    "params",
    "pool",
    "retry_route",
    "retrying",
    "stream",
    "stream_one",
    "submit",
    "ui_csrf",
    "ui_static",
    "workflows",
]
