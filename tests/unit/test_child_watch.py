"""`shoal run` waits for its children through pidfds, not a waiter thread per child."""

from __future__ import annotations

import asyncio
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

from shoal.local.child_watch import pidfd_supported, use_pidfd_watcher


@pytest.fixture
def default_watcher_after() -> Iterator[None]:
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(None)  # the policy makes its default one again


async def _exit_code_and_waiters(code: int) -> tuple[int, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", f"import sys; sys.exit({code})"
    )
    waiters = [t.name for t in threading.enumerate() if "waitpid" in t.name]
    return await proc.wait(), waiters


@pytest.mark.usefixtures("default_watcher_after")
def test_children_are_reaped_with_their_exit_code_and_no_waiter_thread() -> None:
    installed = use_pidfd_watcher()
    assert installed == (sys.version_info < (3, 12) and pidfd_supported())
    code, waiters = asyncio.run(_exit_code_and_waiters(3))
    assert code == 3
    if installed:
        assert waiters == []


@pytest.mark.usefixtures("default_watcher_after")
def test_without_it_python_311_starts_a_waiter_thread_per_child() -> None:
    """The cost the pidfd watcher removes (and the probe above could see it)."""
    if sys.version_info >= (3, 12):
        pytest.skip("Python 3.12+ uses pidfds by default")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(asyncio.ThreadedChildWatcher())
    code, waiters = asyncio.run(_exit_code_and_waiters(0))
    assert code == 0
    assert len(waiters) == 1
