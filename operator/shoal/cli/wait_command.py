"""`shoal wait`: block until workflows reach a phase, or finish; for scripts and CI.

Exit 0 when every named workflow got there, 1 on timeout or when one finished in
another phase (it can never get there any more), as `kubectl wait` does.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from shoal.api.workflow import WorkflowPhase
from shoal.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    FINISHED,
    CliError,
    WatchTimeout,
    connection_args,
    fail,
    follow_workflow,
    out,
    phase,
    run_against_cluster,
    timeout_arg,
)

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["TARGETS", "configure", "reached", "wait"]

TARGETS = ("finished", *(p.value for p in WorkflowPhase))
DEFAULT_TIMEOUT = 300.0


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal wait`'s arguments and handler."""
    p.description = (
        "Wait until every named workflow reaches --for (a phase, or 'finished': any final "
        "phase). Exit 0 when they all did, 1 on timeout or when one ended elsewhere."
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="workflow names")
    p.add_argument(
        "--for",
        dest="target",
        choices=TARGETS,
        default="finished",
        help="the phase to wait for (default: finished, i.e. Succeeded, Failed, Error or Stopped)",
    )
    timeout_arg(p, DEFAULT_TIMEOUT, "waiting")
    connection_args(p)
    p.set_defaults(handler=wait)


def reached(obj: dict[str, Any], target: str) -> bool:
    """The workflow is in the wanted phase (any final one, for `finished`)."""
    return phase(obj) in FINISHED if target == "finished" else phase(obj) == target


def wait(args: argparse.Namespace) -> int:
    """Follow every workflow concurrently, under one deadline."""

    async def run(api: KubeApi, namespace: str) -> int:
        results = await asyncio.gather(
            *(_one(api, namespace, name, args) for name in args.names), return_exceptions=True
        )
        code = EXIT_OK
        for result in results:
            if isinstance(result, CliError):
                fail(str(result))
                code = EXIT_FAILED
            elif isinstance(result, BaseException):
                raise result
        return code

    return run_against_cluster(args, run)


async def _one(api: KubeApi, namespace: str, name: str, args: argparse.Namespace) -> None:
    """Return when `name` reached the target; CliError when it cannot or time ran out."""

    def done(obj: dict[str, Any]) -> bool:
        return reached(obj, args.target) or phase(obj) in FINISHED

    try:
        last = await follow_workflow(
            api, namespace, name, lambda _: None, seconds=args.timeout, done=done
        )
    except WatchTimeout as err:
        raise CliError(
            f"timed out after {args.timeout:g}s waiting for workflow {name!r} "
            f"to be {args.target} (it is {phase(err.last)})"
        ) from None
    if not reached(last, args.target):
        raise CliError(f"workflow {name!r} finished as {phase(last)}, never {args.target}")
    out(f"workflow {name}: {phase(last)}")
