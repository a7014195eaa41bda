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
    "workflows",
]
