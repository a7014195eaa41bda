"""`shoal trigger`: start a run of a CronWorkflow now.

With `--idempotency-key` the run's name is derived from the key, so repeating the
command (a retried CI job, a double click) finds the existing run instead of creating a
second one: the API server's AlreadyExists is the lock. A manual run carries no
scheduled-time annotation, so it never moves the schedule's catch-up cursor.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shoal.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    connection_args,
    parse_params,
    run_against_cluster,
)
from shoal.core.validation import InvalidWorkflow
from shoal.reruns import (
    KEY_ANNOTATION,
    MANUAL_ANNOTATION,
    build_manual_run,
    check_cron_run,
    manual_run_name,
)

__all__ = [
    "KEY_ANNOTATION",
    "MANUAL_ANNOTATION",
    "build_manual_run",
    "configure",
    "manual_run_name",
    "trigger",
]

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal trigger`'s arguments and handler."""
    p.description = "Create a Workflow from a CronWorkflow's workflowSpec right now."
    p.add_argument("cron", help="CronWorkflow name")
    p.add_argument(
        "-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="as for run"
    )
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the same key never creates two runs (the run's name derives from it)",
    )
    connection_args(p)
    p.set_defaults(handler=trigger)


def trigger(args: argparse.Namespace) -> int:
    try:
        params = parse_params(args.param)
    except InvalidWorkflow as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID

    async def body(api: KubeApi, namespace: str) -> int:
        return await _trigger(api, namespace, args.cron, params, args.idempotency_key)

    return run_against_cluster(args, body)


async def _trigger(
    api: KubeApi, namespace: str, name: str, params: dict[str, Any], key: str | None
) -> int:
    from shoal.cron.runs import cronworkflows_path
    from shoal.kube.api import ApiError, workflows_path
    from shoal.kube.templates import fetch_templates
    from shoal.reruns import templates_spec

    try:
        cron = await api.get(cronworkflows_path(namespace, name))
    except ApiError as err:
        if err.status == 404:
            raise CliError(f"cronworkflow {name!r} not found in namespace {namespace!r}") from None
        raise
    source = f"cronworkflow {namespace}/{name}"
    try:  # the same checks as `shoal run`: nothing is created for bad input
        templates = await fetch_templates(api, namespace, templates_spec(cron, source))
        check_cron_run(cron, params, source, templates)
    except InvalidWorkflow as err:
        for problem in err.problems:
            print(f"error: {problem.describe(err.source)}", file=sys.stderr)
        return EXIT_INVALID
    run = build_manual_run(cron, params, key, datetime.now(UTC))
    created = await api.create(workflows_path(namespace), run)
    if created is None:
        print(f"already triggered with this key: workflow {run['metadata']['name']}")
        return EXIT_OK
    print(f"workflow {created['metadata']['name']} created")
    return EXIT_OK
