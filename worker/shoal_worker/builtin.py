"""Built-in jobs, present in every worker image: for demos, tests and benchmarks.

The registry adds :data:`BUILTINS` on first lookup; the ``shoal.`` prefix is reserved
for them.
"""

from __future__ import annotations

import time

from .context import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def noop() -> None:
    """Do nothing: measures pure scheduling and start-up overhead."""


def echo(**args: Any) -> dict[str, Any]:
    """Return the arguments as outputs: wires data through a DAG without real work."""
    return args


def sleep(ctx: Context, seconds: float = 1.0) -> None:
    """Sleep, reporting progress; SIGTERM interrupts it like any job."""
    if seconds < 0:
        ctx.fail(f"seconds must be >= 0, got {seconds}")
    ctx.progress(0, f"sleeping {seconds:g}s")
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(remaining, 0.1))
        done = max(0.0, min(1.0, 1 - (deadline - time.monotonic()) / seconds))
        if done < 1:
            ctx.progress(round(done * 100, 1))
    ctx.progress(100, "done")


def fail(ctx: Context, message: str = "failed on purpose", exit_code: int = 1) -> None:
    """Fail with ``message`` and ``exit_code``: exercises retries and failure paths."""
    ctx.fail(message, exit_code)


BUILTINS: dict[str, Callable[..., Any]] = {
    "shoal.noop": noop,
    "shoal.echo": echo,
    "shoal.sleep": sleep,
    "shoal.fail": fail,
}
