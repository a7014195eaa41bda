"""The one bounded background writer behind every archive recorder.

Runs, attempts, log lines and cron fires are all offered by code that must never wait
on PostgreSQL. Each recorder keeps its own bounded queue (and its own drop policy);
this base owns what they share: one asyncio task that takes a batch, writes it,
retries it with exponential backoff, wakes when something is offered, and lets the
owner drain (wait until nothing is held) and close (drain for a grace period, then
cancel).
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import asyncpg

__all__ = ["BackgroundWriter", "drain_then_cancel", "transient"]

B = TypeVar("B")
"""What one write carries: a batch of rows, or a single record."""


def transient(err: BaseException) -> bool:
    """A failure that waiting cures (connection lost, server restarting or overloaded)."""
    return isinstance(
        err,
        OSError
        | TimeoutError
        | asyncpg.InterfaceError
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.AdminShutdownError
        | asyncpg.CrashShutdownError,
    )


async def drain_then_cancel(
    drain: Callable[[], Awaitable[None]], task: asyncio.Task[Any] | None, grace_seconds: float
) -> None:
    """Let a background writer finish what it holds (bounded), then cancel it."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace_seconds):
            await drain()
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class BackgroundWriter(ABC, Generic[B]):
    """One writer task over a subclass's bounded queue.

    A subclass says how to take the next batch (`_take`), write it (`_write`), settle it
    once written (`_written`), whether it still holds anything (`_holding`), and what a
    failure means (`_failed`: retry the same, a cleaned, or no batch at all).
    """

    task_name = "shoal-archive-writer"
    close_grace_seconds = 5.0
    retake_after_failure = False
    """After a failed write's backoff, take afresh (`_take`) instead of retrying the batch."""

    def __init__(self, *, backoff_seconds: float, max_backoff_seconds: float) -> None:
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.failures = 0
        """Writes that raised (each retry counts)."""
        self.tries = 0
        """Consecutive failures of the batch in flight."""
        self.refusals = 0
        """Consecutive failures of the batch in flight that waiting does not cure."""
        self._inflight: B | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- for subclasses ----------------------------------------------------------------

    @abstractmethod
    def _take(self) -> B | None:
        """The next batch to write, or None when nothing waits."""

    @abstractmethod
    async def _write(self, batch: B) -> None:
        """Write one batch (raising on failure)."""

    @abstractmethod
    def _written(self, batch: B) -> None:
        """The batch is durable: count it and release it."""

    @abstractmethod
    def _holding(self) -> bool:
        """Anything offered and not yet written or dropped (the batch in flight aside)."""

    @abstractmethod
    def _failed(self, batch: B, err: Exception, backoff: float) -> B | None:
        """Writing `batch` failed: log it and return what to retry after `backoff`, or
        None to give the batch up (the subclass counts and reports the loss)."""

    def _wake_writer(self) -> None:
        """Something was offered: let the task run."""
        self._wake.set()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def drain(self) -> None:
        """Wait until everything offered is written (or dropped)."""
        while self._holding() or self._inflight is not None:
            self._progress.clear()
            await self._progress.wait()

    async def close(self, grace_seconds: float | None = None) -> None:
        """Write what is held (for up to `grace_seconds`), then stop."""
        grace = self.close_grace_seconds if grace_seconds is None else grace_seconds
        await drain_then_cancel(self.drain, self._task, grace)
        self._task = None

    # -- the task ----------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self.backoff_seconds
        while True:
            if self._inflight is None:
                self._inflight = self._take()
                if self._inflight is None:
                    self._progress.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
            try:
                await self._write(self._inflight)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.failures += 1
                self.tries += 1
                if not transient(err):
                    self.refusals += 1
                retry = self._failed(self._inflight, err, backoff)
                if retry is None:
                    self._settle()
                    continue
                self._inflight = retry
                await asyncio.sleep(backoff)  # a retry timer, not a synchronisation
                backoff = min(backoff * 2, self.max_backoff_seconds)
                if self.retake_after_failure:
                    self._inflight = None
                continue
            self._written(self._inflight)
            self._settle()
            backoff = self.backoff_seconds

    def _settle(self) -> None:
        self._inflight = None
        self.tries = self.refusals = 0
        self._progress.set()
