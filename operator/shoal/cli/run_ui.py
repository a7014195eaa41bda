"""`shoal run --ui`: the dashboard of this run, on loopback, while it runs (docs/dashboard.md).

Kept apart from local_commands.py: the server extra (FastAPI, uvicorn) is imported only
when `--ui` is given, and `shoal run` without it is unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from shoal.core.timestamps import format_rfc3339

if TYPE_CHECKING:
    from shoal.local.executor import LocalExecutor
    from shoal.server.local_serve import LocalDashboard

__all__ = ["UiError", "add_ui_args", "bind_dashboard", "dashboard_during"]


class UiError(Exception):
    """`--ui` cannot be served: the server extra is missing, or the port is taken."""


def add_ui_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ui",
        action="store_true",
        help="serve this run's dashboard on 127.0.0.1 (no authentication) while it runs",
    )
    p.add_argument(
        "--ui-port", type=int, default=0, metavar="PORT", help="its port (default: a free one)"
    )
    p.add_argument(
        "--ui-keep",
        action="store_true",
        help="keep serving after the run ends, until Ctrl-C (implies --ui)",
    )


def bind_dashboard(args: argparse.Namespace) -> LocalDashboard | None:
    """The dashboard's loopback socket, bound before the run (OSError: port taken)."""
    if not (args.ui or args.ui_keep):
        return None
    try:
        from shoal.server.local_serve import LocalDashboard
    except ImportError as err:
        raise UiError(f"--ui needs the server extra: pip install 'shoal[server]' ({err})") from None
    try:
        return LocalDashboard(args.ui_port)
    except (OSError, OverflowError) as err:
        raise UiError(f"--ui-port {args.ui_port}: {err}") from None


@contextlib.asynccontextmanager
async def dashboard_during(
    board: LocalDashboard | None, executor: LocalExecutor, keep: bool, out: TextIO
) -> AsyncIterator[None]:
    """Serve the executor's live state for the body (the run), then until Ctrl-C with
    `keep`; the dashboard is stopped on the way out, whatever happened."""
    if board is None:
        yield
        return
    from shoal.server.local_app import LocalRun

    def log_path(node: str) -> Path:
        executor.logs.flush(node)  # lines still in the file's buffer are news to a reader
        return executor.logs.path(node)

    run = LocalRun(
        wf=executor.wf,
        state=lambda: executor.state,
        log_path=log_path,
        created_at=format_rfc3339(time.time()),
    )
    board.start(run)
    until = "until Ctrl-C" if keep else "until the run ends"
    print(
        f"dashboard: {board.url} (this run, loopback only, no authentication; {until})",
        file=out,
        flush=True,
    )
    try:
        yield
        if keep:
            print(
                f"run ended; dashboard still at {board.url}: Ctrl-C to stop it",
                file=out,
                flush=True,
            )
            await _ctrl_c()
    finally:
        await board.stop()


async def _ctrl_c() -> None:
    """Wait for SIGINT or SIGTERM (replacing the run's own handlers: the run is over)."""
    import asyncio  # here: `shoal run` without --ui never loads it

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, done.set)
    await done.wait()
