"""local/reactor.py: the loop `shoal run` runs on without asyncio. Timers fire in order
and can be cancelled, a readable fd calls its reader, another thread and a signal wake a
loop asleep in its selector, a failing callback does not stop the others, every wait is
bounded, and closing puts the process's signal handling back as it was."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from shoal.local import reactor as reactor_module
from shoal.local.reactor import SelectReactor, current


def test_timers_fire_in_due_order_and_a_cancelled_one_never() -> None:
    seen: list[str] = []
    with SelectReactor().running() as loop:
        loop.call_later(0.03, seen.append, "late")
        loop.call_later(0.01, seen.append, "early")
        loop.call_later(0.02, seen.append, "cancelled").cancel()
        loop.call_soon(seen.append, "soon")
        assert loop.run_until(lambda: "late" in seen, timeout=10)
    assert seen == ["soon", "early", "late"]


def test_a_wait_is_bounded_and_says_it_timed_out() -> None:
    with SelectReactor().running() as loop:
        started = time.monotonic()
        assert loop.run_until(lambda: False, timeout=0.05) is False
        assert 0.05 <= time.monotonic() - started < 5


def test_a_readable_fd_calls_its_reader_until_removed() -> None:
    r, w = os.pipe()
    got: list[bytes] = []
    try:
        with SelectReactor().running() as loop:
            loop.add_reader(r, lambda: got.append(os.read(r, 100)))
            os.write(w, b"hi")
            assert loop.run_until(lambda: bool(got), timeout=10)
            assert loop.remove_reader(r) is True
            assert loop.remove_reader(r) is False
            os.write(w, b"again")
            assert loop.run_until(lambda: len(got) > 1, timeout=0.05) is False
    finally:
        os.close(r)
        os.close(w)
    assert got == [b"hi"]


def test_another_thread_wakes_a_loop_asleep_in_its_selector() -> None:
    """No timer and no fd: only the wake-up byte can end the wait before its bound."""
    done: list[str] = []
    with SelectReactor().running() as loop:
        threading.Thread(target=loop.call_soon_threadsafe, args=(done.append, "t")).start()
        started = time.monotonic()
        assert loop.run_until(lambda: bool(done), timeout=30)
        assert time.monotonic() - started < 10  # woken, not timed out
    assert done == ["t"]


def test_a_signal_runs_its_handler_on_the_loop_and_close_restores_the_old_one() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    wakeup_before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup_before)
    got: list[str] = []
    with SelectReactor().running() as loop:
        loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGUSR1)).start()
        assert loop.run_until(lambda: bool(got), timeout=30)
    assert got == ["usr1"]
    assert signal.getsignal(signal.SIGUSR1) is before
    assert signal.set_wakeup_fd(-1) == wakeup_before
    signal.set_wakeup_fd(wakeup_before)


def test_a_failing_callback_is_reported_and_the_loop_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str] = []

    def broken() -> None:
        raise ValueError("boom")

    with SelectReactor().running() as loop:
        loop.call_soon(broken)
        loop.call_soon(seen.append, "after")
        assert loop.run_until(lambda: bool(seen), timeout=10)
    assert "ValueError('boom')" in capsys.readouterr().err


def test_current_is_the_running_reactor_and_there_is_one_at_a_time() -> None:
    with pytest.raises(RuntimeError):
        current()  # no asyncio loop runs here either
    with SelectReactor().running() as loop:
        assert current() is loop
        with pytest.raises(RuntimeError), SelectReactor().running():
            pass
    assert reactor_module._running is None


def test_a_closed_reactor_drops_a_late_wake_up() -> None:
    """A thread finishing after the run must not write into a recycled fd number."""
    loop = SelectReactor()
    loop.close()
    r, w = os.pipe()  # likely reuses the closed pipe's numbers
    try:
        loop.call_soon_threadsafe(lambda: None)
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 10)
    finally:
        os.close(r)
        os.close(w)


def test_a_child_is_read_and_reaped_on_the_reactor_own_epoll(tmp_path: Path) -> None:
    """On a SelectReactor the children's pipes go into the reactor's epoll (no second
    epoll): output arrives in order, the end is seen, and nothing stays registered."""
    from shoal.local.child_poll import ReactorPoll, child_poll
    from shoal.local.spawn import spawn

    out: list[bytes] = []
    with SelectReactor().running() as loop:
        argv = ["sh", "-c", "echo one; echo two >&2; echo three"]
        child = spawn(argv, dict(os.environ), tmp_path, out.append, out.append)
        assert isinstance(child_poll(loop), ReactorPoll)
        done = loop.run_until(lambda: child.returncode is not None and child.is_drained, 30)
        assert done
        assert loop._readers.keys() == {loop._wake_r}  # the pipes were removed
    assert child.returncode == 0
    text = b"".join(out)
    assert text.index(b"one") < text.index(b"three")
    assert b"two" in text
