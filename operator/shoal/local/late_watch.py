"""Children whose exit is watched only once they have lived a while.

A child's end is normally seen as both its pipes ending; the parent then reaps it with a
non-blocking `waitpid`, so a short child (a fan-out item) costs no pidfd, no epoll
registration and no close. A pidfd is still needed when the exit must be known while the
pipes stay open (a grandchild holds them) or on its own (a kill's grace period): the
latter asks for it (`Child.exited`), the former is found by this sweep, which gives every
child still running after one to two `LATE_WATCH_SECONDS` its pidfd. One timer serves
all children of a loop, armed only while some are unwatched.
"""

from __future__ import annotations

from typing import Protocol

from shoal.local.reactor import Handle, Reactor

__all__ = ["LATE_WATCH_SECONDS", "LateWatch", "late_watch"]

LATE_WATCH_SECONDS = 0.25
"""A child still running after one to two of these gets its exit watched (a pidfd)."""

_ATTRIBUTE = "_shoal_late_watch"
"""Where a loop keeps its sweep: it lives and dies with the loop."""


class Watchable(Protocol):
    def watch(self) -> None: ...


class LateWatch:
    """Two generations of unwatched children: at each tick the older one is watched and
    the younger one becomes the older, so each child is at least one period old."""

    def __init__(self, loop: Reactor) -> None:
        self._loop = loop
        self._young: dict[Watchable, None] = {}
        self._old: dict[Watchable, None] = {}
        self._timer: Handle | None = None

    def add(self, child: Watchable) -> None:
        """Watch `child`'s exit if it is still unwatched a period or two from now."""
        self._young[child] = None
        if self._timer is None:
            self._timer = self._loop.call_later(LATE_WATCH_SECONDS, self._tick)

    def discard(self, child: Watchable) -> None:
        """`child` is watched or gone: nothing more to do for it."""
        self._young.pop(child, None)
        self._old.pop(child, None)

    def _tick(self) -> None:
        self._timer = None
        due, self._old, self._young = self._old, self._young, {}
        for child in due:
            child.watch()  # removes itself through `discard`
        if self._old:
            self._timer = self._loop.call_later(LATE_WATCH_SECONDS, self._tick)


def late_watch(loop: Reactor) -> LateWatch:
    """The loop's sweep, made on first use."""
    sweep: LateWatch | None = getattr(loop, _ATTRIBUTE, None)
    if sweep is None:
        sweep = LateWatch(loop)
        setattr(loop, _ATTRIBUTE, sweep)
    return sweep
