"""Starting and stopping the test infrastructure's server processes.

Each server writes to its own log file; when something fails to start, the error
carries the tail of that log so CI output says why. Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class StartError(RuntimeError):
    """A piece of test infrastructure could not be started (or became unhealthy)."""


class MissingPrerequisite(StartError):
    """A tool the infrastructure needs is absent (Go, PostgreSQL): skippable off CI."""


def free_port() -> int:
    """A currently free loopback TCP port (the OS picks it, so parallel runs don't clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the test process dies, so no server outlives it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Server:
    """One long-running child process with its output in ``log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        tie_to_parent: bool = True,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.log = log
        self.stop_signal = stop_signal
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                # Popen switches user before preexec_fn runs, which matters: a uid
                # change would clear the parent-death signal.
                user=user,
                group=user,
                extra_groups=[] if user else None,
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise StartError(
                f"{self.name} exited with code {code}; last lines of {self.log}:\n"
                f"{log_tail(self.log)}"
            )

    def stop(self, grace: float = 10.0) -> None:
        stop_pid(self.proc.pid, grace, self.proc.poll, self.stop_signal)


def stop_pid(
    pid: int,
    grace: float,
    poll: Callable[[], int | None] | None = None,
    sig: int = signal.SIGTERM,
) -> None:
    """Signal the process group led by ``pid``, then SIGKILL it after ``grace`` seconds."""

    def alive() -> bool:
        if poll is not None:
            return poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A zombie we are not the parent of still "exists"; check its state.
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                return False
        return True

    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if poll is not None:
        deadline = time.monotonic() + 5
        while poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    *,
    servers: Sequence[Server] = (),
    interval: float = 0.1,
) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds.

    Used only where there is nothing to watch yet (a server that is still starting).
    The servers are checked on every round so a crash fails fast with its log.
    """
    deadline = time.monotonic() + timeout
    while True:
        for server in servers:
            server.check_alive()
        with contextlib.suppress(Exception):
            if check():
                return
        if time.monotonic() >= deadline:
            logs = "\n".join(f"--- {s.name} ({s.log}):\n{log_tail(s.log, 15)}" for s in servers)
            raise StartError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
        time.sleep(interval)
