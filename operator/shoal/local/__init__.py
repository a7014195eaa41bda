"""`shoal run`: the same planner driving local processes instead of Jobs."""

__all__ = [
    "executor",
    "failures",
    "logs",
    "process",
    "reporting",
    "runview",
    "tables",
]
