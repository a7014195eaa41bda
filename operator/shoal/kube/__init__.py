"""The Kubernetes adapter: the Workflow controller, its runner, Jobs, pods and status."""

__all__ = [
    "api",
    "artifact_store",
    "attempts",
    "controller",
    "impostors",
    "jobs",
    "metrics",
    "naming",
    "ownership",
    "pods",
    "runner",
    "safejson",
    "service_accounts",
    "status",
    "watch_gauges",
]
