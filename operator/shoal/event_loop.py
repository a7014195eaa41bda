"""The operator's event loop: uvloop when it is installed, else asyncio's own.

Why: after the HTTP client (kube/aio_transport.py), a quarter of the operator's CPU per
fan-out item was asyncio's Python-level socket and TLS reads and its selector loop, one
pass per pod event; uvloop does that work in C. kopf makes the same choice for
`kopf run`. `SHOAL_EVENT_LOOP=asyncio` keeps asyncio's loop (to compare, or to rule
uvloop out when chasing a bug).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

__all__ = ["ENV", "loop_factory"]

ENV = "SHOAL_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What `asyncio.Runner(loop_factory=...)` should make the loop with (None: asyncio's)."""
    if os.environ.get(ENV, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
