"""A child process read straight through the event loop: raw pipe fds and a pidfd.

asyncio's subprocess path costs the parent, per child, a transport, two pipe protocols,
two StreamReaders, a child-watcher callback and the tasks that pump them; for a fan-out
of `true` that was most of `shoal run`'s work per item. Here a child is one object: its
pipes are read on the raw fds (one epoll for all children, local/child_poll.py), each
chunk handed to a callback at once. Its exit is seen when both pipes end (a `waitpid`
that does not block); a child still running a moment later, or whose exit is asked for,
gets a pidfd (Linux 5.3+; elsewhere one thread waits in `waitpid`, as asyncio's own
default watcher does), so a fan-out of short items opens none (local/late_watch.py).
Children start with `os.posix_spawn` (a third of `subprocess.Popen`'s CPU per spawn);
Popen remains for a child that needs another directory while the parent has other
threads.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.local.child_poll import child_poll
from shoal.local.late_watch import LateWatch, late_watch
from shoal.local.reactor import current

if TYPE_CHECKING:  # both load only when used: most runs never need them
    import asyncio
    import subprocess

__all__ = ["Child", "resolve_program", "spawn"]

READ_CHUNK_BYTES = 64 * 1024

_PIDFDS = hasattr(os, "pidfd_open")
"""Where a late pidfd can be had (Linux): children are reaped when their pipes end and
watched only if they live on (local/late_watch.py); elsewhere a thread waits from the
start, as asyncio's default watcher does."""

RESTORED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name)
)
"""Python ignores these at start-up and an ignored signal stays ignored across exec: a
child gets them back at their default, as Popen's `restore_signals` does (or a pipeline
like `yes | head -1` in a command would never end its `yes`)."""

OnChunk = Callable[[bytes], None]
"""Receives each chunk read from a pipe, and `b""` once at its end."""

_found: dict[str, str] = {}
"""`resolve_program`'s answers: a fan-out looks the same program up once, not per item."""


def resolve_program(name: str, env: Mapping[str, str], cwd: Path) -> str:
    """The file `name` runs, looked up as `execvpe` would (the child's PATH), or raise
    FileNotFoundError/PermissionError with the errno Popen would give."""
    if "/" in name:
        path = name if os.path.isabs(name) else os.path.join(cwd, name)
        if path not in _found:  # once: a file removed since fails in posix_spawn itself
            if not os.path.exists(path):
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
            _found[path] = path
        return path
    search = env.get("PATH", os.defpath)
    key = f"{name}\0{search}"
    found = _found.get(key)
    if found is None:
        found = shutil.which(name, path=search)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        _found[key] = found
    return found


class Child:
    """A running child: its pid, its exit (`exited`), its output (callbacks), and
    `drained` once both pipes have ended (or were given up on).

    `on_change`, if given, is called from the event loop right when the exit is known and
    right when the pipes are drained (twice, in either order, or once when both are learnt
    together): the executor settles an attempt there and then, with no task or future
    callback a loop turn later.
    """

    def __init__(
        self,
        pid: int,
        pipes: dict[int, OnChunk],
        popen: subprocess.Popen[bytes] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.pid = pid
        self.returncode: int | None = None
        """As `Popen.returncode`: negative for a signal; None until the child is reaped."""
        self.is_drained = False
        """Both pipes have ended (or were given up on)."""
        self._popen = popen
        self._loop = current()
        self._futures: dict[str, asyncio.Future[Any]] = {}
        """`exited`/`drained` as asyncio futures, made only when asked for (tests, asyncio)."""
        self._pipes = pipes
        self._on_change = on_change
        self._pidfd = -1
        self._watched = False
        self._late: LateWatch | None = None
        self._poll = child_poll(self._loop)
        for fd in pipes:  # left blocking: read only when the epoll says it is readable
            self._poll.add(fd, functools.partial(self._read, fd))
        if pipes and _PIDFDS:  # the pipes' end shows the exit (local/late_watch.py)
            self._late = late_watch(self._loop)
            self._late.add(self)
        else:
            self.watch()

    @property
    def exited(self) -> asyncio.Future[int]:
        """The exit code, as `returncode`, as a future of the running asyncio loop; asking
        for it watches the exit from now on."""
        self.watch()
        return self._future("exited", self.returncode is not None, self.returncode)

    @property
    def drained(self) -> asyncio.Future[None]:
        """Done once both pipes have ended, as a future of the running asyncio loop."""
        return self._future("drained", self.is_drained, None)

    def _future(self, name: str, done: bool, value: object) -> asyncio.Future[Any]:
        future = self._futures.get(name)
        if future is None:
            import asyncio

            future = self._futures[name] = asyncio.get_running_loop().create_future()
            if done:
                future.set_result(value)
        return future

    def _resolve(self, name: str, value: object) -> None:
        future = self._futures.get(name)
        if future is not None and not future.done():
            future.set_result(value)

    def watch(self) -> None:
        """Learn of the exit as soon as it happens, pipes open or not (a pidfd, or a
        thread where there is none); once, and not after the child was reaped."""
        if self._watched or self.returncode is not None:
            return
        self._watched = True
        if self._late is not None:
            self._late.discard(self)
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd: a thread waits, as asyncio's would
            threading.Thread(target=self._wait_in_thread, daemon=True).start()
            return
        self._poll.add(self._pidfd, self._reap)

    def _reap_now(self) -> bool:
        """Reap the child if it has exited, without waiting; True if it had (never when
        a thread waits for it: that thread reaps it)."""
        if self._watched and self._pidfd < 0:
            return False
        if self._popen is not None:
            code = self._popen.poll()
        else:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: asyncio reports 255 then too
                pid, status = self.pid, 255 << 8
            code = None if pid == 0 else os.waitstatus_to_exitcode(status)
        if code is None:
            return False
        self._set_exit(code)
        return True

    def _reap(self) -> None:
        self._unwatch()
        if self._popen is not None:
            self._set_exit(self._popen.wait())
            return
        try:
            _, status = os.waitpid(self.pid, 0)  # readable pidfd: exited, cannot block
        except ChildProcessError:  # reaped by someone else: asyncio reports 255 then too
            self._set_exit(255)
            return
        self._set_exit(os.waitstatus_to_exitcode(status))

    def _wait_in_thread(self) -> None:
        try:
            _, status = os.waitpid(self.pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            code = -signal.SIGKILL  # reaped elsewhere: nothing more to learn
        self._loop.call_soon_threadsafe(self._waited, code)

    def _waited(self, code: int) -> None:
        if self._popen is not None:
            self._popen.returncode = code
        self._set_exit(code)

    def _set_exit(self, code: int) -> None:
        if self.returncode is not None:
            return  # reaped already (a late waiter thread finds nothing)
        self.returncode = code
        self._unwatch()
        self._resolve("exited", code)
        if self._on_change is not None:
            self._on_change()

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        self._pipes[fd](chunk)
        if not chunk:  # after its last line is read: the pipe's end may settle the child
            self._close_pipe(fd)

    def _close_pipe(self, fd: int) -> None:
        if self._pipes.pop(fd, None) is None:
            return
        self._poll.remove(fd)
        os.close(fd)
        if not self._pipes and not self.is_drained:
            self.is_drained = True
            self._resolve("drained", None)
            if self.returncode is None and self._reap_now():
                return  # `_set_exit` told `on_change`: exited and drained at once
            if self.returncode is None:
                self.watch()  # the outputs ended first (or the exit is still under way)
            if self._on_change is not None:
                self._on_change()

    def close_pipes(self) -> None:
        """Stop reading (a grandchild holds the pipes, or the run gives up on the child)."""
        for fd in list(self._pipes):
            self._close_pipe(fd)

    def signal(self, signum: int, *, group_outlives: bool = False) -> None:
        """Signal the child's whole process group, so no grandchild outlives the run.

        Once the child is reaped its pid may be reused, so the group is signalled then
        only with `group_outlives`: when a member of it is known to be alive (it holds
        the pipes open), which keeps the group id from being handed out again.
        """
        if self.returncode is None or group_outlives:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)

    def close(self) -> None:
        """Release every fd; the child, if still running, is left to its group's signal
        (and is not watched from now on: no pidfd is opened after this)."""
        self._watched = True
        self.close_pipes()
        self._unwatch()

    def _unwatch(self) -> None:
        """Release what watches the exit: the late sweep's entry and the pidfd."""
        if self._late is not None:
            self._late.discard(self)
        if self._pidfd >= 0:
            self._poll.remove(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1


def _is_current_dir(cwd: Path) -> bool:
    text = str(cwd)
    return text in (".", "") or text == os.getcwd()


_inherited: list[int] | None = None
"""Inheritable fds above 2 that this process was started with (a make jobserver's pipe,
a shell's extra redirections), found once: Python opens its own fds non-inheritable."""


def _inherited_fds() -> list[int]:
    """The inheritable fds a child must not get: Popen closes every fd above 2 in the
    child, posix_spawn only those marked close-on-exec, so these are closed explicitly."""
    global _inherited
    if _inherited is None:
        try:
            found = [int(name) for name in os.listdir("/proc/self/fd")]
        except OSError:
            found = []
        _inherited = [fd for fd in found if fd > 2 and _inheritable(fd)]
    return [fd for fd in _inherited if _inheritable(fd)]


def _inheritable(fd: int) -> bool:
    try:
        return os.get_inheritable(fd)
    except OSError:  # closed since
        return False


def _posix_spawn(program: str, argv: list[str], env: dict[str, str], out_w: int, err_w: int) -> int:
    return os.posix_spawn(
        program,
        argv,
        env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
            *((os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()),
        ],
        setsid=True,
        setsigdef=RESTORED_SIGNALS,
    )


def _posix_spawn_in(
    cwd: Path, program: str, argv: list[str], env: dict[str, str], out_w: int, err_w: int
) -> int | None:
    """posix_spawn in `cwd`, or None where it cannot be used.

    Python's posix_spawn cannot change the child's directory, so the parent steps into
    `cwd` for the one call and back: only while it is the process's only thread, since a
    directory is shared by all threads (`shoal run` has others once artifact steps ran,
    and then Popen, which changes it in the child, is used instead).
    """
    if _is_current_dir(cwd):
        return _posix_spawn(program, argv, env, out_w, err_w)
    if threading.active_count() > 1:
        return None
    back = os.open(os.curdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(cwd)
        return _posix_spawn(program, argv, env, out_w, err_w)
    finally:
        os.fchdir(back)
        os.close(back)


def spawn(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    on_stdout: OnChunk,
    on_stderr: OnChunk,
    on_change: Callable[[], None] | None = None,
) -> Child:
    """Start `argv` in a session of its own (its own process group), stdin from
    /dev/null, stdout and stderr to pipes read by the event loop. Raises OSError when
    the program cannot be started; `on_change` as `Child`'s (never called from here)."""
    program = resolve_program(argv[0], env, cwd)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    popen = None
    try:
        pid = _posix_spawn_in(cwd, program, argv, env, out_w, err_w)
        if pid is None:
            import subprocess

            popen = subprocess.Popen(
                argv,
                executable=program,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
            pid = popen.pid
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return Child(pid, {out_r: on_stdout, err_r: on_stderr}, popen, on_change)
