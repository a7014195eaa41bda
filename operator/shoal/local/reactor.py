"""The local executor's event loop without asyncio: timers, readable fds, and wake-ups from
signals and other threads, on one epoll (Linux, as local/child_poll.py).

`import asyncio` was about 45 ms of `shoal run`'s start-up (it brings `ssl`,
`concurrent.futures`, `logging`, `inspect`), a third of a short run, and a local run uses
none of what it adds: it needs timers, one readable fd (the children's epoll,
local/child_poll.py), a wake-up when Ctrl-C arrives or a thread finishes an artifact step.
`Reactor` names those calls with asyncio's own method names, so a running asyncio loop is
one too: `shoal run --ui` (whose dashboard server is asyncio) and the tests drive the same
executor on asyncio, the plain CLI on `SelectReactor`. `current()` is the one in use.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import select
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

__all__ = ["Handle", "Reactor", "SelectReactor", "current"]


class Handle(Protocol):
    """A scheduled call (asyncio's `Handle`/`TimerHandle`): it can be cancelled."""

    def cancel(self) -> None: ...


class Reactor(Protocol):
    """What the local executor asks of its loop; `asyncio.AbstractEventLoop` has it all."""

    def time(self) -> float: ...

    def call_soon(self, callback: Callable[..., object], *args: Any) -> Handle: ...

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Handle: ...

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> Handle: ...

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any) -> None: ...

    def remove_reader(self, fd: int) -> bool: ...

    def call_exception_handler(self, context: dict[str, Any]) -> None: ...


class _Call:
    """One scheduled callback; timers order by their due time, then by when they were set."""

    __slots__ = ("args", "callback", "cancelled", "seq", "when")

    def __init__(
        self, when: float, seq: int, callback: Callable[..., object], args: tuple[Any, ...]
    ) -> None:
        self.when = when
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _Call) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


_running: SelectReactor | None = None
"""The reactor whose `running()` block is active in this process (the main thread's)."""


def current() -> Reactor:
    """The reactor of the code running now: a `SelectReactor` in its `running()` block,
    else the running asyncio loop (RuntimeError when there is neither)."""
    if _running is not None:
        return _running
    asyncio = sys.modules.get("asyncio")  # never imported here: only if someone did
    if asyncio is None:
        raise RuntimeError("no reactor is running (SelectReactor.running or asyncio)")
    loop: Reactor = asyncio.get_running_loop()
    return loop


class SelectReactor:
    """A single-threaded loop: ready callbacks, then due timers, then ready fds; it sleeps
    in its epoll until the next timer, an fd, or a wake-up byte on its own pipe (a signal
    through `signal.set_wakeup_fd`, or `call_soon_threadsafe`). A readable fd's reader is
    called straight from the poll, with no handle or queue entry per event."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._readers: dict[int, tuple[Callable[..., object], tuple[Any, ...]]] = {}
        self._ready: deque[_Call] = deque()
        self._timers: list[_Call] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._from_threads: deque[_Call] = deque()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.add_reader(self._wake_r, self._drain_wakeups)
        self._signals: dict[int, Any] = {}
        self._old_wakeup_fd: int | None = None
        self._closed = False
        self.turns = 0
        """Selector waits so far (what bench/local_parent.py counts as loop turns)."""

    def time(self) -> float:
        return time.monotonic()

    def call_soon(self, callback: Callable[..., object], *args: Any) -> Handle:
        call = self._call(0.0, callback, args)
        self._ready.append(call)
        return call

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Handle:
        call = self._call(time.monotonic() + max(0.0, delay), callback, args)
        heapq.heappush(self._timers, call)
        return call

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any) -> Handle:
        call = _Call(0.0, 0, callback, args)  # not `_call`: its counter is the loop thread's
        with self._lock:
            self._from_threads.append(call)
        self._wake()
        return call

    def add_reader(self, fd: int, callback: Callable[..., object], *args: Any) -> None:
        if fd not in self._readers:
            self._epoll.register(fd, select.EPOLLIN)
        self._readers[fd] = (callback, args)

    def remove_reader(self, fd: int) -> bool:
        if self._readers.pop(fd, None) is None:
            return False
        with contextlib.suppress(OSError):  # closed already: the kernel dropped it
            self._epoll.unregister(fd)
        return True

    def add_signal_handler(self, signum: int, callback: Callable[..., object], *args: Any) -> None:
        """Run `callback(*args)` from the loop when `signum` arrives (the main thread's
        reactor only, as asyncio's); the previous handler is restored by `close`."""
        if self._old_wakeup_fd is None:
            self._old_wakeup_fd = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        previous = signal.signal(signum, lambda *_: self.call_soon(callback, *args))
        self._signals.setdefault(signum, previous)

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Run callbacks until `done()` holds (True) or `timeout` seconds pass (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            self._run_ready()
            if done():
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            wait = self._next_wait(now, deadline)
            self.turns += 1
            for fd, _ in self._epoll.poll(-1 if wait is None else wait):
                reader = self._readers.get(fd)  # an earlier reader may have removed it
                if reader is not None:
                    self._guarded(reader[0], reader[1])
            self._due(time.monotonic())
        return True

    @contextlib.contextmanager
    def running(self) -> Iterator[SelectReactor]:
        """Make this the process's `current()` reactor for the block; closed after it."""
        global _running
        if _running is not None:
            raise RuntimeError("a reactor is already running")
        _running = self
        try:
            yield self
        finally:
            _running = None
            self.close()

    def close(self) -> None:
        """Restore the signal handlers and release the epoll and the pipe (a thread's
        late `call_soon_threadsafe` is then dropped)."""
        if self._closed:
            return
        self._closed = True
        for signum, previous in self._signals.items():
            signal.signal(signum, previous)
        self._signals.clear()
        if self._old_wakeup_fd is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            self._old_wakeup_fd = None
        self._epoll.close()
        self._readers.clear()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _call(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> _Call:
        self._seq += 1
        return _Call(when, self._seq, callback, args)

    def _next_wait(self, now: float, deadline: float | None) -> float | None:
        if self._ready or self._from_threads:
            return 0.0
        due = self._timers[0].when if self._timers else None
        if deadline is not None:
            due = deadline if due is None else min(due, deadline)
        return None if due is None else max(0.0, due - now)

    def _due(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0].when <= now:
            self._ready.append(heapq.heappop(timers))

    def _run_ready(self) -> None:
        if self._from_threads:
            with self._lock:
                self._ready.extend(self._from_threads)
                self._from_threads.clear()
        self._due(time.monotonic())
        for _ in range(len(self._ready)):  # those added meanwhile wait for the next pass
            call = self._ready.popleft()
            if not call.cancelled:
                self._guarded(call.callback, call.args)

    def _guarded(self, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        try:
            callback(*args)
        except Exception as err:  # as asyncio: one failing callback does not stop the loop
            self.call_exception_handler({"message": "error in a callback", "exception": err})

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        """Report a callback's error on stderr and carry on (asyncio's default logs it)."""
        print(f"shoal: {context.get('message')}: {context.get('exception')!r}", file=sys.stderr)

    def _wake(self) -> None:
        if self._closed:  # its fd number may belong to another file by now
            return
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_r, 4096):
                pass
