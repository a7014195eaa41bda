"""`shoal resubmit`: run a past workflow again, as a new Workflow.

The source is the Workflow in the cluster when it still exists, otherwise its latest run
in the archive, so a run deleted long ago can be repeated exactly: same spec, same
parameters, unless `-p` overrides some. Unlike `shoal retry`, which re-runs the failed
part of the same object, this starts from scratch under a new name. The new Workflow
says where it came from (label and annotations `shoal.dev/resubmitted-from`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from shoal.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    connection_args,
    database_args,
    out,
    param_arg,
    parse_params,
    report_invalid,
    resolve_database,
    run_against_cluster,
    timeout_arg,
    watch_to_end,
)
from shoal.cli.get_command import archived_object, find_archived, live_or_none, missing_everywhere
from shoal.core.validation import InvalidWorkflow
from shoal.reruns import FROM, FROM_UID, resubmission
from shoal.reruns import validate_resubmission as validate

__all__ = ["FROM", "FROM_UID", "configure", "resubmission", "validate"]

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal resubmit`'s arguments and handler."""
    p.description = (
        "Create a new Workflow from a past run's spec and parameters: the "
        "Workflow in the cluster if it still exists, else its latest archived run. -p "
        "overrides parameters. The new run is labelled and annotated "
        f"{FROM} with where it came from."
    )
    p.add_argument("name", help="the workflow to run again")
    param_arg(p, "override")
    naming = p.add_mutually_exclusive_group()
    naming.add_argument("--name", dest="new_name", metavar="NEW", help="the new Workflow's name")
    naming.add_argument(
        "--generate-name",
        nargs="?",
        const="",
        metavar="PREFIX",
        help="let the API server name it PREFIX + 5 characters (the default, with PREFIX NAME-)",
    )
    p.add_argument(
        "-w", "--watch", action="store_true", help="follow the new workflow until it finishes"
    )
    p.add_argument(
        "-o", "--output", choices=["text", "name"], default="text", help="name: print the name only"
    )
    timeout_arg(p, None, "watching")
    database_args(p, "read when the Workflow is gone from the cluster")
    connection_args(p)
    p.set_defaults(handler=resubmit)


def resubmit(args: argparse.Namespace) -> int:
    try:
        params = parse_params(args.param)
    except InvalidWorkflow as err:
        return report_invalid(err)
    dsn = resolve_database(args)

    async def run(api: KubeApi, namespace: str) -> int:
        return await _resubmit(api, namespace, args, params, dsn)

    return run_against_cluster(args, run)


async def _source(
    api: KubeApi, namespace: str, name: str, dsn: str | None
) -> tuple[dict[str, Any], str]:
    """The Workflow to copy and a phrase saying where it came from."""
    live = await live_or_none(api, namespace, name)
    if live is not None:
        return live, "the cluster"
    if dsn is None:
        raise CliError(
            f"workflow {name!r} not found in namespace {namespace!r} (to resubmit an archived "
            "run, pass --database-url or set SHOAL_DATABASE_URL)"
        )
    detail = await find_archived(dsn, namespace, name)
    if detail is None:
        raise missing_everywhere(namespace, name)
    return archived_object(detail), f"the archive (run {detail.run.uid}, {detail.run.phase})"


async def _resubmit(
    api: KubeApi,
    namespace: str,
    args: argparse.Namespace,
    params: dict[str, Any],
    dsn: str | None,
) -> int:
    from shoal.kube.api import ApiError, workflows_path

    source, origin = await _source(api, namespace, args.name, dsn)
    body = resubmission(source, params, new_name=args.new_name, generate_name=args.generate_name)
    try:
        validate(body, params, f"workflow {namespace}/{args.name} (from {origin})")
    except InvalidWorkflow as err:
        return report_invalid(err)
    try:
        created = await api.request("POST", workflows_path(namespace), body=body)
    except ApiError as err:
        if err.status == 409:
            raise CliError(
                f"workflow {args.new_name!r} already exists in namespace {namespace!r}"
            ) from None
        if err.status in (400, 422):
            raise CliError(f"the API server rejected the workflow: {err}", EXIT_INVALID) from None
        raise
    new = created["metadata"]["name"]
    if args.output == "name":
        out(new)
    else:
        out(
            f"workflow {new} created in namespace {namespace}: resubmitted from {args.name}, "
            f"read from {origin}"
        )
    if not args.watch:
        return EXIT_OK
    return await watch_to_end(api, namespace, new, args.timeout)
