"""The user-facing models (Workflow, CronWorkflow), their CRDs and every input limit.

Pydantic models only: no adapter is imported here, so the models serve the operator,
the CLI and any future API alike.
"""

__all__ = [
    "common",
    "crd",
    "cron",
    "limits",
    "workflow",
]
