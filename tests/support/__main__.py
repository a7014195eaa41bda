"""``python -m support up|down|status`` (run with PYTHONPATH=tests): a developer cluster.

``make cluster-up`` starts the same control plane and node agent the tests use, detached,
under ``.shoal/testcluster/`` in the repository, and prints the KUBECONFIG to export.
``make cluster-down`` stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from . import binaries
from .controlplane import ControlPlane, NodeSpec, stop_from_state
from .procs import StartError

DEFAULT_ROOT = binaries.REPO / ".shoal" / "testcluster"


def _running(root: Path) -> bool:
    state_file = root / "state.json"
    if not state_file.exists():
        return False
    pids = json.loads(state_file.read_text()).get("pids", {})
    for pid in pids.values():
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ProcessLookupError):
            return False
        if stat.split(") ", 1)[1].startswith("Z"):
            return False
    return bool(pids)


def _print_usage(root: Path, seconds: float | None) -> None:
    kubeconfig = root / "admin.kubeconfig"
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    print(f"Test cluster is up{took}. Use it with:\n")
    print(f"  export KUBECONFIG={kubeconfig}")
    print(f"  {binaries.kubectl_bin()} get nodes\n")
    print(f"Component logs: {root / 'logs'}/   Stop it: make cluster-down")


def up(root: Path, nodes: int) -> int:
    if _running(root):
        print("Test cluster already running.")
        _print_usage(root, None)
        return 0
    stop_from_state(root)
    shutil.rmtree(root, ignore_errors=True)
    plane = ControlPlane(
        root,
        nodes=[NodeSpec(f"shoal-node-{i}") for i in range(1, nodes + 1)],
        tie_to_parent=False,  # outlive this command
    )
    started = time.monotonic()
    try:
        plane.start()
    except StartError as err:
        plane.stop()
        print(f"cluster-up failed: {err}", file=sys.stderr)
        return 1
    _print_usage(root, time.monotonic() - started)
    return 0


def down(root: Path) -> int:
    stopped = stop_from_state(root)
    print(f"Stopped: {', '.join(stopped)}" if stopped else "No test cluster was running.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m support", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args()
    root = args.root.resolve()
    if args.command == "up":
        return up(root, args.nodes)
    if args.command == "down":
        return down(root)
    print("running" if _running(root) else "stopped")
    return 0 if _running(root) else 1


if __name__ == "__main__":
    sys.exit(main())
