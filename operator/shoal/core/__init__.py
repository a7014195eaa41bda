"""The pure heart: spec + state + now -> decisions, with no I/O and no adapter imports.

`validation` compiles a Workflow, `planner` decides what runs next, `state` holds a
run's progress, `collector` turns a worker's stdout into an outcome, and `timestamps`,
`sizes`, `text` and `jsonbounds` are the small shared measures every layer uses.
"""

__all__ = [
    "collector",
    "compiled",
    "decisions",
    "expressions",
    "jsonbounds",
    "planner",
    "sandbox",
    "sizes",
    "state",
    "text",
    "timestamps",
    "validation",
]
