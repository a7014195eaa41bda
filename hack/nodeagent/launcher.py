"""Container launcher: sets up one container's process, then execs its command.

Run by the node agent as ``python -I -S launcher.py SPEC`` (standard library only, so it
starts fast). In order: join the memory cgroup, enter a private mount namespace, make
the image's own paths reachable for a non-root user, bind-mount the pod's volumes and
termination-message file at their declared paths, drop to the requested user, and exec.
A failed exec is reported through a file so the agent can show the kubelet's StartError
with its message.

Every host path the launcher needs (mount sources, the agent's work directory, the
start-error file's directory) is opened before the first mount: a volume mounted over
an ancestor of one of them (an emptyDir at /tmp, where the agent keeps its state) would
otherwise hide it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import stat
import sys
from dataclasses import dataclass
from typing import Any

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(
    source: str | None, target: str, flags: int, fstype: str | None = None, data: str | None = None
) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source} -> {target}",
    )


def _hold(path: str) -> int:
    """An O_PATH descriptor: the path stays reachable through /proc/self/fd after mounts."""
    return os.open(path, os.O_PATH | os.O_CLOEXEC)


def _fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _blocked_ancestor(path: str) -> str | None:
    """The outermost ancestor of ``path`` that other users may not search, if any."""
    parts = os.path.normpath(path).split("/")[1:-1]
    current = ""
    for part in parts:
        current += "/" + part
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


def _make_dirs(path: str) -> None:
    """Create missing directories down to ``path``, each searchable by every user."""
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        path = os.path.dirname(path)
    for item in reversed(missing):
        os.mkdir(item)
        os.chmod(item, 0o755)


@dataclass
class _ImagePath:
    """One image path as held before any mount: itself, and its entries if it is closed."""

    path: str
    fd: int
    blocked: str | None
    """Its outermost ancestor that other users may not search, if any."""
    entries: list[tuple[str, int, bool]] | None
    """Each entry (name, descriptor, is a directory) when the path itself is closed."""

    def place(self) -> None:
        """Put the path at its place, reachable by every user (directories created)."""
        _make_dirs(self.path)
        if self.entries is None:
            _mount(_fd_path(self.fd), self.path, MS_BIND | MS_REC)
            return
        _mount("tmpfs", self.path, 0, "tmpfs", "mode=0755")
        for name, fd, is_dir in self.entries:
            target = os.path.join(self.path, name)
            if is_dir:
                os.mkdir(target)
            else:
                with open(target, "a"):
                    pass
            _mount(_fd_path(fd), target, MS_BIND | MS_REC)

    def close(self) -> None:
        os.close(self.fd)
        for _, fd, _ in self.entries or ():
            os.close(fd)


def _hold_image_paths(paths: list[str]) -> list[_ImagePath]:
    held = []
    for path in paths:
        if not os.path.exists(path):
            continue
        closed = not _searchable(path)
        held.append(
            _ImagePath(
                path, _hold(path), _blocked_ancestor(path), _hold_entries(path) if closed else None
            )
        )
    return held


def _expose_image_paths(held: list[_ImagePath]) -> None:
    """Make the image's own paths reachable for a non-root user, as in a real image.

    The node agent's "images" are host programs; one under a directory only root may
    enter (an interpreter below a 0700 /root) cannot run as the pod's user. Here the
    blocking directory is covered by an empty tmpfs holding just the image's paths, bound
    back at the same place: the container sees them and nothing else of that directory.
    An image path that is itself closed (a checkout made by `mktemp -d`, mode 0700) is
    covered the same way, by a tmpfs holding each of its entries bound back.
    """
    covered: set[str] = set()
    for item in sorted(held, key=lambda h: (h.blocked or "").count("/")):
        if item.blocked is not None and item.blocked not in covered:
            _make_dirs(item.blocked)
            _mount("tmpfs", item.blocked, 0, "tmpfs", "mode=0755")
            covered.add(item.blocked)
    for item in held:
        if item.blocked is not None or item.entries is not None:
            item.place()


def _expose_image_paths_under_volumes(held: list[_ImagePath], targets: list[str]) -> None:
    """A volume mounted over an image path's ancestor (the chart's emptyDir at /tmp, a
    checkout below /tmp) would hide the image: in a real container the image's files are
    not on the host's /tmp. Place such paths again, inside the volume."""
    for item in held:
        if any(item.path.startswith(target.rstrip("/") + "/") for target in targets):
            item.place()


def _searchable(path: str) -> bool:
    """May every user enter `path` (a directory), or is it not a directory at all?"""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True  # nothing to expose
    return not stat.S_ISDIR(mode) or bool(mode & 0o001)


def _hold_entries(path: str) -> list[tuple[str, int, bool]]:
    """Each entry of a directory, held (name, O_PATH descriptor, is a directory)."""
    entries = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        try:
            entries.append((name, _hold(full), os.path.isdir(full)))
        except OSError:
            continue  # a dangling symlink: nothing to bind
    return entries


def _mount_volumes(mounts: list[dict[str, object]], sources: dict[str, int]) -> None:
    for mount in sorted(mounts, key=lambda m: str(m["target"]).count("/")):
        source, target = str(mount["source"]), str(mount["target"])
        if bool(mount.get("dir")):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.exists(target):
                # The mount point must exist; an empty file is left on the host.
                with open(target, "a"):
                    pass
        _mount(_fd_path(sources[source]), target, MS_BIND | MS_REC)
        if mount.get("readOnly"):
            _mount(None, target, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)


def _enter_container(spec: dict[str, Any]) -> int | None:
    """Mount namespace, image paths and volumes; returns the held work directory, if any."""
    mounts = spec.get("mounts") or []
    image_paths = spec.get("image_paths") or []
    workdir = _hold(spec["workdir"]) if spec.get("workdir") else None
    if mounts or image_paths:
        _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        # Nothing done in here may leak back into the host's mount table.
        _mount(None, "/", MS_REC | MS_PRIVATE)
        # Held in the new namespace (a bind mount's source must be in the caller's),
        # before anything is mounted over them.
        sources = {str(m["source"]): _hold(str(m["source"])) for m in mounts}
        held = _hold_image_paths(image_paths)
        _expose_image_paths(held)
        _mount_volumes(mounts, sources)
        _expose_image_paths_under_volumes(held, [str(m["target"]) for m in mounts])
        for fd in sources.values():
            os.close(fd)
        for item in held:
            item.close()
    if workdir is None:
        os.makedirs(spec["cwd"], exist_ok=True)
    return workdir


def main() -> None:
    spec_path = sys.argv[1]
    with open(spec_path) as handle:
        spec = json.load(handle)
    os.unlink(spec_path)
    # Held from the start: the file lives in the agent's state directory, which a
    # volume (an emptyDir at /tmp) may cover once mounted.
    error_dir = os.open(os.path.dirname(spec["start_error"]), os.O_PATH | os.O_DIRECTORY)
    try:
        for procs in spec.get("cgroup_procs", []):
            with open(procs, "w") as out:
                out.write(str(os.getpid()))
        workdir = _enter_container(spec)
        gid, uid = spec.get("gid"), spec.get("uid")
        if gid is not None or uid is not None:
            os.setgroups([int(g) for g in spec.get("groups", [])])
        if gid is not None:
            os.setgid(int(gid))
        if uid is not None:
            os.setuid(int(uid))
        # After any uid change (which clears it): die with the agent, like a container
        # dies with its runtime shim.
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:
            raise OSError("node agent went away before the container started")
        if workdir is not None:
            # Through the descriptor: its ancestors (the agent's 0700 state directory)
            # need not be searchable by the container's user, nor visible at all.
            os.fchdir(workdir)
            os.close(workdir)
        else:
            os.chdir(spec["cwd"])
        argv = spec["argv"]
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as err:
        message = str(err)
        program = spec["argv"][0]
        if isinstance(err, FileNotFoundError) and "/" not in program:
            message = f'exec: "{program}": executable file not found in $PATH'
        name = os.path.basename(spec["start_error"])
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=error_dir)
        with os.fdopen(fd, "w") as out:
            out.write(message)
        sys.stderr.write(f"launcher: {message}\n")
        sys.exit(128)


if __name__ == "__main__":
    main()
