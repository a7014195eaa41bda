"""CronWorkflow: the pure schedule maths (`schedule`) and its kopf controller (`controller`)."""

__all__ = [
    "after",
    "controller",
    "fetch",
    "fires",
    "poll",
    "schedule",
]
