"""`shoal server`: the REST API, authenticated and authorized by Kubernetes itself.

Each request is made to the API server with the caller's own bearer token, so RBAC
decides every read and write (docs/dashboard.md).
"""

from shoal.server.app import OPENAPI_PATH, create_app
from shoal.server.identity import AuthMode, Cluster, load_cluster

__all__ = ["OPENAPI_PATH", "AuthMode", "Cluster", "create_app", "load_cluster"]
