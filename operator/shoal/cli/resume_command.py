"""`shoal resume`: approve (or `--reject`) a workflow's approval gates and lift
`spec.suspend`; `--local DIR` does the same for a `shoal run` on this machine.

Who decided is the caller's Kubernetes user name (kube/whoami.py), never a credential;
locally it is the login name. The transition is the core's (`shoal.core.resume`).
"""

from __future__ import annotations

import argparse
import getpass
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shoal.api.gates import Approval, GateDecision
from shoal.api.limits import MAX_STRING_LENGTH
from shoal.cli.common import (
    EXIT_OK,
    CliError,
    connection_args,
    fail,
    get_workflow,
    out,
    run_against_cluster,
)
from shoal.core.resume import ResumeError, plan_resume
from shoal.core.timestamps import format_rfc3339

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["configure", "resume"]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal resume`'s arguments and handler."""
    p.description = (
        "Approve the approval gates a workflow is waiting at (or only --node's), or reject "
        "them with --reject; without --node, also lift spec.suspend. Who and when are "
        "recorded in the gate's outputs."
    )
    p.add_argument("name", nargs="?", help="workflow name (not with --local)")
    p.add_argument("--node", help="decide this gate only (it may not have started yet)")
    p.add_argument("--reject", action="store_true", help="reject instead of approve")
    p.add_argument("--message", default="", help="a note kept with the decision")
    p.add_argument(
        "--local", metavar="WORKDIR", help="a `shoal run` on this machine: its --workdir"
    )
    connection_args(p)
    p.set_defaults(handler=resume)


def _message(args: argparse.Namespace) -> str:
    if len(args.message) > MAX_STRING_LENGTH:
        raise CliError(f"--message is longer than {MAX_STRING_LENGTH} characters")
    return str(args.message)


def resume(args: argparse.Namespace) -> int:
    try:
        message = _message(args)
    except CliError as err:
        return fail(str(err), err.code)
    if args.local is not None:
        return _resume_local(args, message)
    if not args.name:
        return fail("resume needs a workflow name (or --local WORKDIR)")

    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import workflows_path
        from shoal.kube.whoami import caller_name

        body = await get_workflow(api, namespace, args.name)
        by = await caller_name(api, args.kubeconfig, getattr(args, "context", None))
        try:
            plan = plan_resume(
                body,
                node=args.node,
                reject=args.reject,
                message=message,
                by=by,
                at=format_rfc3339(time.time()),
            )
        except ResumeError as err:
            raise CliError(str(err)) from None
        await api.merge_patch(workflows_path(namespace, args.name), plan.patch)
        verb = "rejected" if args.reject else "approved"
        for gate in plan.decided:
            out(f"workflow {args.name}: gate {gate} {verb} by {by or 'an unknown user'}")
        if plan.unsuspended:
            out(f"workflow {args.name}: resumed (spec.suspend: false)")
        return EXIT_OK

    return run_against_cluster(args, run)


def _resume_local(args: argparse.Namespace, message: str) -> int:
    """Decide gates of a local run through files in its work directory."""
    from shoal.local.gate_files import read_suspended, set_suspended, write_approval

    workdir = Path(args.local)
    if not workdir.is_dir():
        return fail(f"--local {workdir}: no such work directory (shoal run prints it)")
    decision = GateDecision.REJECTED if args.reject else GateDecision.APPROVED
    by = getpass.getuser()
    approval = Approval(decision=decision, by=by, at=format_rfc3339(time.time()), message=message)
    if args.node is None:
        if not read_suspended(workdir):
            return fail(
                "--local: name the gate to decide with --node (or the run is not suspended)"
            )
        set_suspended(workdir, False)
        out(f"{workdir}: resumed")
        return EXIT_OK
    write_approval(workdir, args.node, approval)
    verb = "rejected" if args.reject else "approved"
    out(f"{workdir}: gate {args.node} {verb} by {by}")
    return EXIT_OK
