"""The local executor's spawner (local/spawn.py): what a child sees (argv, environment,
working directory, stdin, its own session), what the parent gets back (every byte of
both pipes, the exit code, a signal as a negative code), and that no fd is left open."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from shoal.local import spawn as spawn_module
from shoal.local.spawn import Child, resolve_program, spawn

PROBE = """
import json, os, sys
sys.stderr.write("to stderr\\n")
print(json.dumps({"argv0": sys.argv[0], "cwd": os.getcwd(), "var": os.environ.get("PROBE_VAR"),
    "stdin": sys.stdin.read(), "sid": os.getsid(0) == os.getpid()}))
"""


async def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, bytes, bytes]:
    out: list[bytes] = []
    err: list[bytes] = []
    child = spawn(argv, env, cwd, out.append, err.append)
    try:
        code = await asyncio.wait_for(child.exited, 30)
        await asyncio.wait_for(child.drained, 30)
    finally:
        child.close()
    assert out[-1] == b""  # each pipe's end is told once, last
    assert err[-1] == b""
    return code, b"".join(out), b"".join(err)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("where", ["here", "elsewhere", "elsewhere with a thread"])
def test_the_child_sees_its_argv_env_cwd_and_an_empty_stdin_in_its_own_session(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """posix_spawn here; elsewhere, posix_spawn with the parent stepping into the directory
    and back, or (another thread is running) Popen."""
    cwd = Path.cwd() if where == "here" else tmp_path
    parent_dir = os.getcwd()
    env = {**os.environ, "PROBE_VAR": "from the env"}
    before = open_fds()
    popens: list[object] = []
    real_popen = subprocess.Popen

    def counted(*args: Any, **kwargs: Any) -> Any:
        popens.append(args)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", counted)  # spawn imports it when it needs it
    release = threading.Event()
    other = threading.Thread(target=release.wait, args=(30,))
    if where.endswith("thread"):
        other.start()
    try:
        code, out, err = asyncio.run(run([sys.executable, "-c", PROBE], env, cwd))
    finally:
        release.set()
        if other.is_alive():
            other.join(30)
    assert os.getcwd() == parent_dir
    assert len(popens) == (1 if where.endswith("thread") else 0)
    assert code == 0
    assert err == b"to stderr\n"
    seen = json.loads(out)
    assert seen == {
        "argv0": "-c",
        "cwd": str(cwd.resolve()),
        "var": "from the env",
        "stdin": "",
        "sid": True,
    }
    assert open_fds() == before


def test_a_large_output_arrives_whole_and_the_exit_code_comes_back() -> None:
    script = "import sys; sys.stdout.write('x' * 300000 + '\\n'); sys.exit(7)"
    code, out, _ = asyncio.run(run([sys.executable, "-c", script], dict(os.environ), Path.cwd()))
    assert code == 7
    assert out == b"x" * 300000 + b"\n"


def test_a_signal_to_the_group_comes_back_as_a_negative_code(tmp_path: Path) -> None:
    async def scenario() -> int:
        child: Child = spawn(
            ["sh", "-c", "sleep 30 & wait"], dict(os.environ), tmp_path, bytes, bytes
        )
        try:
            child.signal(signal.SIGTERM)
            return await asyncio.wait_for(child.exited, 30)
        finally:
            child.close()

    assert asyncio.run(scenario()) == -signal.SIGTERM


def test_programs_are_found_on_the_childs_path_or_relative_to_its_directory(
    tmp_path: Path,
) -> None:
    tool = tmp_path / "bin" / "mytool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    assert resolve_program("mytool", {"PATH": str(tool.parent)}, Path.cwd()) == str(tool)
    assert resolve_program("./bin/mytool", {}, tmp_path) == os.path.join(tmp_path, "./bin/mytool")
    code, out, _ = asyncio.run(run(["./bin/mytool"], {"PATH": "/usr/bin:/bin"}, tmp_path))
    assert (code, out) == (0, b"hi\n")


def test_a_missing_program_raises_the_error_popen_would(tmp_path: Path) -> None:
    before = open_fds()

    async def scenario(argv: list[str]) -> None:
        spawn(argv, {"PATH": str(tmp_path)}, tmp_path, bytes, bytes)

    for argv in (["no-such-program"], ["./no-such-file"]):
        with pytest.raises(FileNotFoundError) as raised:
            asyncio.run(scenario(argv))
        assert raised.value.strerror == "No such file or directory"
        assert raised.value.filename == argv[0]
    assert open_fds() == before


def test_signals_python_ignores_are_back_at_their_default_in_the_child(tmp_path: Path) -> None:
    """Python ignores SIGPIPE; a child must not inherit that (`yes | head -1` would hang)."""
    for cwd in (Path.cwd(), tmp_path):
        code, out, _ = asyncio.run(run(["cat", "/proc/self/status"], dict(os.environ), cwd))
        assert code == 0
        ignored = next(line for line in out.decode().splitlines() if line.startswith("SigIgn:"))
        mask = int(ignored.split()[1], 16)
        assert mask & (1 << (signal.SIGPIPE - 1)) == 0, ignored
        assert mask & (1 << (signal.SIGXFSZ - 1)) == 0, ignored


def test_an_inheritable_fd_of_the_parent_is_not_passed_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As Popen's close_fds: a child (or a daemon it leaves) must not hold, say, the
    pipe of whoever started shoal run, which would then never see its end."""
    read_end, pipe_end = os.pipe()
    write_end = os.dup2(pipe_end, 150, inheritable=True)  # above any fd `ls` opens itself
    os.close(pipe_end)
    monkeypatch.setattr(spawn_module, "_inherited", None)  # found again, with this fd
    try:
        for cwd in (Path.cwd(), tmp_path):
            code, out, _ = asyncio.run(run(["ls", "/proc/self/fd"], dict(os.environ), cwd))
            assert code == 0
            assert str(write_end) not in out.decode().split(), out
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_held_poll_serves_every_child_of_the_block_and_closes_after_it() -> None:
    """The executor holds the epoll for its run: children one after another (a chain)
    share one, and no fd is left once the block and the loop are done."""
    from shoal.local.child_poll import child_poll, held

    before = open_fds()

    async def scenario() -> list[object]:
        polls: list[object] = []
        with held():
            for _ in range(3):
                code, _, _ = await run(["true"], dict(os.environ), Path.cwd())
                assert code == 0
                polls.append(child_poll())
        return polls

    first, *others = asyncio.run(scenario())
    assert all(poll is first for poll in others)
    assert open_fds() == before
