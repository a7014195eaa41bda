"""Container processes: spawn through the launcher, pump output to the log, reap.

Each container run is one process group (killing the group is "stopping the
container"). Where the host lets us create memory cgroups (v1, or a delegated v2
subtree), a container with a memory limit gets its own cgroup, and an OOM kill there is
reported as OOMKilled, like a container runtime does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .logs import LogWriter

log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("launcher.py")


class MemoryCgroups:
    """Creates per-container memory cgroups below the agent's own, if the host allows."""

    def __init__(self) -> None:
        self.base: Path | None = None
        self.version = 0
        try:
            self._detect()
        except OSError as err:
            log.info("memory limits disabled: %s", err)
        if self.base is None:
            log.info("memory limits disabled: no writable memory cgroup")
        else:
            log.info("memory limits via cgroup v%d under %s", self.version, self.base)

    def _detect(self) -> None:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                root = Path("/sys/fs/cgroup/memory")
                base = root / path.lstrip("/") / "shoal-nodeagent"
                base.mkdir(exist_ok=True)
                self.base, self.version = base, 1
                return
        unified = [line.split(":", 2)[2] for line in lines if line.startswith("0::")]
        root = Path("/sys/fs/cgroup")
        if not unified or "memory" not in (root / "cgroup.controllers").read_text().split():
            return
        # cgroup v2: processes may only live in leaves, so move the agent into a leaf of
        # its own cgroup and enable the memory controller for siblings.
        own = root / unified[0].lstrip("/")
        leaf = own / "agent"
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
        (own / "cgroup.subtree_control").write_text("+memory")
        base = own / "shoal-nodeagent"
        base.mkdir(exist_ok=True)
        (base / "cgroup.subtree_control").write_text("+memory")
        self.base, self.version = base, 2

    def create(self, name: str, limit: int) -> Path | None:
        if self.base is None:
            return None
        path = self.base / name
        try:
            path.mkdir(exist_ok=True)
            if self.version == 1:
                (path / "memory.limit_in_bytes").write_text(str(limit))
                swap = path / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    with contextlib.suppress(OSError):
                        swap.write_text(str(limit))
            else:
                (path / "memory.max").write_text(str(limit))
                with contextlib.suppress(OSError):
                    (path / "memory.swap.max").write_text("0")
        except OSError as err:
            log.warning("cannot create memory cgroup %s: %s", path, err)
            return None
        return path

    def oom_killed(self, path: Path) -> bool:
        try:
            if self.version == 1:
                text = (path / "memory.oom_control").read_text()
            else:
                text = (path / "memory.events").read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value or 0) > 0:
                return True
        return False

    async def remove(self, path: Path) -> None:
        """Kill anything left in the cgroup (daemonised children) and delete it."""
        procs = path / "cgroup.procs"
        for _ in range(100):
            try:
                pids = [int(p) for p in procs.read_text().split()]
            except OSError:
                return
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.02)
        _rmdir(path)


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def ensure_mount_points(targets: list[tuple[str, bool]]) -> None:
    """Create the host paths that bind mounts need, and leave them in place.

    A bind mount needs an existing target, and the private mount namespace shares the
    host's filesystems, so a pod mounting at /data makes an (empty) /data on the host.
    They are never removed: on Linux >= 3.18 removing a directory detaches every mount on
    it in *other* namespaces too, so one agent's cleanup would pull a volume out from
    under a pod of another agent (two test clusters on one host did exactly that).
    An empty directory or file left on a test machine costs nothing.
    """
    for target, is_dir in targets:
        path = Path(target)
        missing = []
        probe = path
        while not os.path.lexists(probe) and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        for item in reversed(missing):
            try:
                if item == path and not is_dir:
                    item.touch(exist_ok=True)
                else:
                    item.mkdir(exist_ok=True)
            except OSError as err:
                log.warning("cannot create mount point %s: %s", item, err)
                break


@dataclass
class Exit:
    code: int
    oom_killed: bool
    start_error: str | None


class ContainerProcess:
    """One run of one container."""

    def __init__(self, run_dir: Path, log_writer: LogWriter, cgroups: MemoryCgroups) -> None:
        self.run_dir = run_dir
        self.cgroups = cgroups
        self.log = log_writer
        self.proc: asyncio.subprocess.Process | None = None
        self.cgroup: Path | None = None
        self.started_at = 0.0

    async def start(self, spec: dict[str, Any], memory: int | None, cgroup_name: str) -> None:
        from .podspec import write_spec

        self.run_dir.mkdir(parents=True, exist_ok=True)
        spec_path = self.run_dir / "launch.json"
        spec["start_error"] = str(self.run_dir / "start-error")
        if memory:
            self.cgroup = self.cgroups.create(cgroup_name, memory)
            if self.cgroup is not None:
                spec["cgroup_procs"] = [str(self.cgroup / "cgroup.procs")]
        write_spec(spec_path, spec)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            str(LAUNCHER),
            str(spec_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            env={},
        )
        self.started_at = time.time()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def _pump(self, stream: asyncio.StreamReader, name: str) -> None:
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return
            self.log.write(name, chunk)

    async def wait(self) -> Exit:
        """Wait for the container's main process; then end the rest of its group."""
        proc = self.proc
        assert proc is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        pumps = [
            asyncio.ensure_future(self._pump(proc.stdout, "stdout")),
            asyncio.ensure_future(self._pump(proc.stderr, "stderr")),
        ]
        returncode = await proc.wait()
        # The container is its main process: when it ends, so does everything it started.
        self.kill(signal.SIGKILL)
        oom = False
        if self.cgroup is not None:
            oom = self.cgroups.oom_killed(self.cgroup)
            await self.cgroups.remove(self.cgroup)
        try:
            await asyncio.wait_for(asyncio.gather(*pumps), timeout=5)
        except TimeoutError:
            for pump in pumps:
                pump.cancel()
        self.log.close()
        code = 128 - returncode if returncode < 0 else returncode
        error_file = self.run_dir / "start-error"
        start_error = error_file.read_text() if error_file.exists() else None
        return Exit(code=code, oom_killed=oom, start_error=start_error)

    def kill(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
