"""Counting and reporting objects that claim to be a Workflow's but are not.

Each impostor is counted (`shoal_impostors_ignored_total`, by kind) and described in a
warning line, at most one per interval: a tenant creating pods in a loop must not be
able to flood the operator's log. The line names the object and what it claimed (no
values from its spec or status, so nothing a pod carries reaches the log).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("shoal.impostors")
LOG_INTERVAL_SECONDS = 10.0


class ImpostorReport:
    """Called by runners with each impostor: counts it, logs a sample of them."""

    def __init__(
        self,
        count: Callable[[str], None],
        interval: float = LOG_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.count = count
        self.interval = interval
        self.clock = clock
        self._next_log = float("-inf")
        self._suppressed = 0

    def __call__(self, kind: str, description: str) -> None:
        self.count(kind)
        now = self.clock()
        if now < self._next_log:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        log.warning("ignored impostor %s: %s%s", kind, description[:500], more)
        self._suppressed = 0
        self._next_log = now + self.interval
