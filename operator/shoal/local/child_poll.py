"""Every child's fds (two pipes and a pidfd each) in one epoll of their own, which is a
single reader of the event loop.

`loop.add_reader` costs a Handle, a selector key and a transport check per fd, and the
loop a callback per ready fd; a fan-out item registers three fds and removes three. Here
an fd is one `epoll.register` call, and one loop callback dispatches whatever is ready.
The epoll is closed when its last fd goes, so nothing outlives the run's loop, unless
someone holds it open (`held`): the executor does for its run, so a chain or a fan-out at
low parallelism does not open, register and close an epoll again at every child.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable, Iterator

from shoal.local.reactor import Reactor, SelectReactor, current

__all__ = ["ChildPoll", "ReactorPoll", "child_poll", "held"]

_ATTRIBUTE = "_shoal_child_poll"
"""Where a loop keeps its open poll: it lives and dies with the loop (a module-level map
would keep a loop alive whose run ended with a child never closed)."""


class ChildPoll:
    """One epoll registered with `loop`, dispatching each ready fd to its handler."""

    def __init__(self, loop: Reactor) -> None:
        self._loop = loop
        self._epoll = select.epoll()
        self._handlers: dict[int, Callable[[], None]] = {}
        self._holds = 0
        loop.add_reader(self._epoll.fileno(), self._ready)

    def add(self, fd: int, handler: Callable[[], None]) -> None:
        """Call `handler` whenever `fd` is readable (or at its end), until `remove`."""
        self._epoll.register(fd, select.EPOLLIN)
        self._handlers[fd] = handler

    def remove(self, fd: int) -> None:
        """Stop watching `fd` (before it is closed); the last one closes the poll."""
        if self._handlers.pop(fd, None) is None:
            return
        self._epoll.unregister(fd)
        self._close_if_idle()

    def hold(self) -> None:
        """Stay open with no fd, until as many `release` calls."""
        self._holds += 1

    def release(self) -> None:
        self._holds -= 1
        self._close_if_idle()

    def _close_if_idle(self) -> None:
        if self._handlers or self._holds > 0 or self._epoll.closed:
            return
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        if getattr(self._loop, _ATTRIBUTE, None) is self:
            delattr(self._loop, _ATTRIBUTE)

    def _ready(self) -> None:
        for fd, _ in self._epoll.poll(0):
            handler = self._handlers.get(fd)  # an earlier handler may have removed it
            if handler is None:
                continue
            try:
                handler()
            except Exception as err:  # one child's failure must not stop the others
                self._loop.call_exception_handler(
                    {"message": f"error handling child fd {fd}", "exception": err}
                )


class ReactorPoll:
    """On a `SelectReactor` (local/reactor.py), whose own epoll costs one `register` per
    fd and calls a reader straight from its poll, the children's fds go into it: no second
    epoll and no second wait per event."""

    def __init__(self, reactor: SelectReactor) -> None:
        self._reactor = reactor

    def add(self, fd: int, handler: Callable[[], None]) -> None:
        self._reactor.add_reader(fd, handler)

    def remove(self, fd: int) -> None:
        self._reactor.remove_reader(fd)

    def hold(self) -> None:
        """Nothing to keep open: the reactor's epoll lives as long as the reactor."""

    def release(self) -> None:
        """As `hold`."""


def child_poll(loop: Reactor | None = None) -> ChildPoll | ReactorPoll:
    """The running reactor's poll (`loop`, when the caller has it), opened on first use."""
    loop = loop or current()
    poll: ChildPoll | ReactorPoll | None = getattr(loop, _ATTRIBUTE, None)
    if poll is None:
        poll = ReactorPoll(loop) if isinstance(loop, SelectReactor) else ChildPoll(loop)
        setattr(loop, _ATTRIBUTE, poll)
    return poll


@contextlib.contextmanager
def held() -> Iterator[None]:
    """The running loop's poll stays open within the block, whatever fds come and go."""
    poll = child_poll()
    poll.hold()
    try:
        yield
    finally:
        poll.release()
