"""Container launcher: sets up one container's process, then execs its command.

Run by the node agent as ``python -I -S launcher.py SPEC`` (standard library only, so it
starts fast). In order: join the memory cgroup, enter a private mount namespace and
bind-mount the pod's volumes and termination-message file at their declared paths,
drop to the requested user, and exec. A failed exec is reported through a file so the
agent can show the kubelet's StartError with its message.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

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


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None, target.encode(), None, ctypes.c_ulong(flags), None
        ),
        f"mount {source} -> {target}",
    )


def _mount_volumes(mounts: list[dict[str, object]]) -> None:
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # Nothing done in here may leak back into the host's mount table.
    _mount(None, "/", MS_REC | MS_PRIVATE)
    for mount in sorted(mounts, key=lambda m: str(m["target"]).count("/")):
        source, target = str(mount["source"]), str(mount["target"])
        if os.path.isdir(source):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.exists(target):
                # The mount point must exist; an empty file is left on the host.
                with open(target, "a"):
                    pass
        _mount(source, target, MS_BIND | MS_REC)
        if mount.get("readOnly"):
            _mount(None, target, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)


def main() -> None:
    spec_path = sys.argv[1]
    with open(spec_path) as handle:
        spec = json.load(handle)
    os.unlink(spec_path)
    try:
        for procs in spec.get("cgroup_procs", []):
            with open(procs, "w") as out:
                out.write(str(os.getpid()))
        if spec.get("mounts"):
            _mount_volumes(spec["mounts"])
        os.makedirs(spec["cwd"], exist_ok=True)
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
        os.chdir(spec["cwd"])
        argv = spec["argv"]
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as err:
        message = str(err)
        program = spec["argv"][0]
        if isinstance(err, FileNotFoundError) and "/" not in program:
            message = f'exec: "{program}": executable file not found in $PATH'
        with open(spec["start_error"], "w") as out:
            out.write(message)
        sys.stderr.write(f"launcher: {message}\n")
        sys.exit(128)


if __name__ == "__main__":
    main()
