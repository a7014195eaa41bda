"""Evaluate iterating CEL expressions in a helper process that can be killed.

The CEL runtime has no cost limit, and five nested `all()` over 100-element lists take
hours. An expression that uses a comprehension macro therefore runs in one long-lived
child process (started on first use); the caller waits at most the time budget, and on
expiry the child is killed and replaced. A thread could not be stopped, and evaluating on
the caller's thread would stall the operator's event loop for as long as CEL runs.
"""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from shoal.api.limits import EVALUATOR_MEMORY_BYTES

STARTUP_SECONDS = 60.0
"""How long the child may take to start on a busy machine."""


class BudgetExceeded(Exception):
    """The evaluation did not finish within its time budget."""


class EvaluationFailed(Exception):
    """CEL raised an error; `missing_key` is set for a missing map key."""

    def __init__(self, message: str, missing_key: str | None = None) -> None:
        super().__init__(message)
        self.missing_key = missing_key


def _serve(conn: Connection) -> None:
    """The child's loop: compile (cached) and run what the parent sends, until EOF."""
    import resource

    import cel

    # Memory, like time, is bounded: past it an allocation fails and the child ends, which
    # fails the expression instead of starving the operator's container.
    limit = EVALUATOR_MEMORY_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send("ready")
    programs: dict[str, Any] = {}
    while True:
        try:
            source, scope = conn.recv()
        except (EOFError, OSError):
            return
        try:
            program = programs.get(source)
            if program is None:
                if len(programs) > 1024:
                    programs.clear()
                program = programs[source] = cel.compile(source)
            conn.send((True, program.execute(scope)))
        except KeyError as err:
            conn.send((False, (str(err), str(err.args[0]) if err.args else "?")))
        except Exception as err:  # the CEL runtime raises assorted built-in types
            conn.send((False, (str(err), None)))


class Sandbox:
    """One child process, used by one caller at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ready = False

    def _spawn(self) -> None:
        """Start a child without waiting for it (a replacement starts while nobody waits)."""
        # A fresh interpreter, not fork: forking a process that runs threads and an event
        # loop is unsafe, and multiprocessing's spawn would re-run the caller's __main__.
        ours, theirs = socket.socketpair()
        with ours, theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "shoal.core.sandbox", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
            )
            self._conn = Connection(ours.detach())
        self._ready = False

    def _connection(self) -> Connection:
        """The child's connection once it is ready; start-up is charged to no expression."""
        if self._conn is None:
            self._spawn()
        assert self._conn is not None
        if not self._ready:
            try:
                ok = self._conn.poll(STARTUP_SECONDS) and self._conn.recv() == "ready"
            except (EOFError, OSError):
                ok = False
            if not ok:
                self._kill()
                raise EvaluationFailed("the expression evaluator process did not start")
            self._ready = True
        return self._conn

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None
        self._ready = False

    def start(self) -> None:
        """Start the child now (the operator does at start-up, off any Workflow's clock)."""
        with self._lock:
            self._connection()

    def evaluate(self, source: str, scope: dict[str, Any], timeout: float) -> Any:
        """The value of `source` in `scope`; BudgetExceeded after `timeout` seconds."""
        with self._lock:
            conn = self._connection()
            try:
                payload = pickle.dumps((source, scope))
            except Exception as err:  # nothing was sent: the child is still in step
                raise EvaluationFailed(f"cannot pass the input to CEL: {err}") from None
            try:
                conn.send_bytes(payload)
                reply = conn.recv() if conn.poll(timeout) else None
            except (EOFError, OSError) as err:
                self._kill()
                raise EvaluationFailed(f"the evaluator process ended: {err}") from None
            if reply is None:
                self._kill()
                self._spawn()  # the replacement starts up while the caller carries on
                raise BudgetExceeded
        ok, value = reply
        if ok:
            return value
        message, missing = value
        raise EvaluationFailed(message, missing)

    def close(self) -> None:
        """Stop the child (it also ends on its own when this process exits)."""
        with self._lock:
            self._kill()


SANDBOX = Sandbox()
"""The process-wide evaluator."""


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
