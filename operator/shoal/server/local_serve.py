"""Serve `shoal run --ui`'s dashboard inside the run's own event loop, on loopback only.

The socket is bound here, before uvicorn starts, so the URL printed is the one that
answers (a free port when none is given) and it can never be anything but 127.0.0.1:
there is no authentication. uvicorn's own signal handling is left out: Ctrl-C belongs to
`shoal run` (it stops the run; with `--ui-keep`, it then ends the dashboard).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from shoal.server.local_app import LocalRun, create_local_app

__all__ = ["LOOPBACK", "STOP_SECONDS", "LocalDashboard"]

LOOPBACK = "127.0.0.1"
STOP_SECONDS = 5
"""An open event stream is cut after this long when the dashboard stops."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # Ctrl-C is `shoal run`'s
        yield


class LocalDashboard:
    """The local run's API (and UI) on 127.0.0.1:port, served until `stop`."""

    def __init__(self, port: int = 0) -> None:
        """Bind the socket now, so a taken port is an error before the run starts."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((LOOPBACK, port))
            self.sock.listen(128)  # the URL answers once printed (queued until served)
        except OSError:
            self.sock.close()
            raise
        self.port: int = self.sock.getsockname()[1]
        self.server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def start(self, run: LocalRun) -> None:
        """Serve `run` from now on (in the running event loop)."""
        config = uvicorn.Config(
            create_local_app(run),
            log_level=logging.WARNING,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=STOP_SECONDS,
            lifespan="off",
        )
        self.server = _Server(config)
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))

    async def stop(self) -> None:
        """Stop serving (bounded: open streams are cut after STOP_SECONDS)."""
        if self._task is None or self.server is None:
            self.sock.close()
            return
        self.server.should_exit = True
        try:
            async with asyncio.timeout(STOP_SECONDS * 2):
                await self._task
        except TimeoutError:
            self._task.cancel()
        finally:
            self.sock.close()
