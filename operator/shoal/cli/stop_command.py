"""`shoal stop`: ask the operator to stop a workflow (spec.stop: true), and maybe wait."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from shoal.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    FINISHED,
    CliError,
    WatchTimeout,
    connection_args,
    follow_workflow,
    get_workflow,
    out,
    phase,
    run_against_cluster,
    timeout_arg,
    verdict,
)

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["configure", "stop"]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal stop`'s arguments and handler."""
    p.description = (
        "Ask the operator to stop a workflow: its pods are deleted, nodes not "
        "yet started are Omitted, and the workflow ends Stopped."
    )
    p.add_argument("name", help="workflow name")
    p.add_argument(
        "--wait", action="store_true", help="wait until the workflow is Stopped (exit 1 if not)"
    )
    timeout_arg(p, 120.0, "waiting")
    connection_args(p)
    p.set_defaults(handler=stop)


def stop(args: argparse.Namespace) -> int:
    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import workflows_path

        obj = await get_workflow(api, namespace, args.name)
        now = phase(obj)
        if now in FINISHED:
            out(f"workflow {args.name} already finished ({now}); nothing to stop")
            return EXIT_OK if now == "Stopped" or not args.wait else EXIT_FAILED
        if (obj.get("spec") or {}).get("stop"):
            out(f"workflow {args.name} ({now}): a stop was already requested")
        else:
            await api.merge_patch(workflows_path(namespace, args.name), {"spec": {"stop": True}})
            out(
                f"workflow {args.name} ({now}): stop requested; the operator deletes its pods "
                "and marks it Stopped"
            )
        if not args.wait:
            return EXIT_OK
        try:
            final = await follow_workflow(
                api, namespace, args.name, lambda _: None, seconds=args.timeout
            )
        except WatchTimeout as err:
            raise CliError(
                f"workflow {args.name} is still {phase(err.last)} after {args.timeout:g}s "
                "(is the operator running?)"
            ) from None
        out(verdict(final))
        return EXIT_OK if phase(final) == "Stopped" else EXIT_FAILED

    return run_against_cluster(args, run)
