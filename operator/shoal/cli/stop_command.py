"""`shoal stop` and `shoal terminate`: ask the operator to stop a workflow, and maybe wait.

A stop (`spec.stop: true`) still runs `runPolicy: always` nodes once their dependencies
have ended, as Argo runs exit handlers; a terminate (`spec.terminate: true`) runs nothing
more.
"""

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

__all__ = ["configure", "configure_terminate", "stop"]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal stop`'s arguments and handler."""
    p.description = (
        "Ask the operator to stop a workflow: its pods are deleted, nodes not "
        "yet started are Omitted (but runPolicy: always nodes still run, as an exit "
        "handler), and the workflow ends Stopped."
    )
    _arguments(p)
    p.set_defaults(handler=stop, field="stop")


def configure_terminate(p: argparse.ArgumentParser) -> None:
    """`shoal terminate`'s arguments and handler."""
    p.description = (
        "Like stop, but runPolicy: always nodes do not run either: its pods are deleted, "
        "every node not yet finished is Omitted or Failed, and the workflow ends Stopped."
    )
    _arguments(p)
    p.set_defaults(handler=stop, field="terminate")


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="workflow name")
    p.add_argument(
        "--wait", action="store_true", help="wait until the workflow is Stopped (exit 1 if not)"
    )
    timeout_arg(p, 120.0, "waiting")
    connection_args(p)


def stop(args: argparse.Namespace) -> int:
    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import workflows_path

        obj = await get_workflow(api, namespace, args.name)
        now = phase(obj)
        if now in FINISHED:
            out(f"workflow {args.name} already finished ({now}); nothing to stop")
            return EXIT_OK if now == "Stopped" or not args.wait else EXIT_FAILED
        field = getattr(args, "field", "stop")
        if (obj.get("spec") or {}).get(field):
            out(f"workflow {args.name} ({now}): a {field} was already requested")
        else:
            patch = {"spec": {field: True}}
            await api.merge_patch(workflows_path(namespace, args.name), patch)
            out(
                f"workflow {args.name} ({now}): {field} requested; the operator deletes its "
                "pods and marks it Stopped"
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
