"""`shoal suspend`: no new node or attempt of the workflow starts until `shoal resume`;
what runs finishes (`spec.suspend: true`). `--local DIR` suspends a `shoal run`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from shoal.cli.common import (
    EXIT_OK,
    FINISHED,
    CliError,
    connection_args,
    fail,
    get_workflow,
    out,
    phase,
    run_against_cluster,
)

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["configure", "suspend"]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal suspend`'s arguments and handler."""
    p.description = (
        "Suspend a workflow: nothing new starts (running pods finish) until `shoal resume`. "
        "activeDeadlineSeconds still counts."
    )
    p.add_argument("name", nargs="?", help="workflow name (not with --local)")
    p.add_argument(
        "--local", metavar="WORKDIR", help="a `shoal run` on this machine: its --workdir"
    )
    connection_args(p)
    p.set_defaults(handler=suspend)


def suspend(args: argparse.Namespace) -> int:
    if args.local is not None:
        from shoal.local.gate_files import set_suspended

        workdir = Path(args.local)
        if not workdir.is_dir():
            return fail(f"--local {workdir}: no such work directory (shoal run prints it)")
        set_suspended(workdir, True)
        out(f"{workdir}: suspended; `shoal resume --local {workdir}` carries on")
        return EXIT_OK
    if not args.name:
        return fail("suspend needs a workflow name (or --local WORKDIR)")

    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import workflows_path

        obj = await get_workflow(api, namespace, args.name)
        now = phase(obj)
        if now in FINISHED:
            raise CliError(f"workflow {args.name} already finished ({now}); nothing to suspend")
        if (obj.get("spec") or {}).get("suspend") is True:
            out(f"workflow {args.name} ({now}) is already suspended")
            return EXIT_OK
        await api.merge_patch(workflows_path(namespace, args.name), {"spec": {"suspend": True}})
        out(f"workflow {args.name} ({now}): suspended; nothing new starts until `shoal resume`")
        return EXIT_OK

    return run_against_cluster(args, run)
