"""The operator runs on uvloop when it is installed, on asyncio's loop when told to or
when uvloop is missing, and works the same on either."""

from __future__ import annotations

import asyncio
import sys

import pytest

from shoal.event_loop import ENV, loop_factory


def run_on(factory: object) -> str:
    async def main() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    with asyncio.Runner(loop_factory=factory) as runner:  # type: ignore[arg-type]
        return runner.run(main())


def test_uvloop_is_the_loop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert run_on(loop_factory()).startswith("uvloop")


def test_asyncio_when_asked_or_when_uvloop_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "asyncio")
    assert loop_factory() is None
    monkeypatch.delenv(ENV)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails as if not installed
    assert loop_factory() is None
    assert run_on(None).startswith("asyncio")
