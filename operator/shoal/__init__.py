"""Shoal's control plane: a Kubernetes operator, a local executor and the `shoal` CLI.

Layers, innermost first: `api` (the models and limits users write against) and `core`
(the pure planner, expressions and validation) import no adapter; the adapters
`kube`, `cron`, `archive`, `local` and `cli` build on them. See docs/architecture.md.
"""

__all__ = [
    "api",
    "archive",
    "artifact_steps",
    "cli",
    "core",
    "cron",
    "kube",
    "linesplit",
    "local",
    "manifests",
]
