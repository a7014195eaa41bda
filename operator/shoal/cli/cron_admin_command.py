"""`shoal cron list|suspend|resume`: the CronWorkflows of a namespace, and pausing one.

`list` reads what the operator records in each CronWorkflow's status (the next and the
last fire time), so it answers "when does this run next?" without a clock of its own.
`suspend` and `resume` patch `spec.suspend`, exactly as `kubectl patch` would.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shoal.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    connection_args,
    fail,
    note,
    out,
    parse_time,
    run_against_cluster,
    span,
    table,
)

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["ACTIONS", "configure", "cron", "cron_rows", "cronworkflows_path", "schedule_words"]

ACTIONS = ("list", "suspend", "resume")


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal cron`'s arguments and handler."""
    p.description = (
        "list: every CronWorkflow with its schedule (and in words), next and last run, and "
        "whether it is suspended. suspend NAME / resume NAME: stop or restart its schedule "
        "(spec.suspend); runs already started go on."
    )
    p.add_argument("action", choices=ACTIONS, help="list, suspend or resume")
    p.add_argument("name", nargs="?", help="the CronWorkflow (suspend and resume)")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list: every namespace")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    connection_args(p)
    p.set_defaults(handler=cron)


def cronworkflows_path(namespace: str | None, name: str | None = None) -> str:
    """The CronWorkflow collection of `namespace` (of all with None), or one of them."""
    base = "/apis/shoal.dev/v1alpha1"
    base = f"{base}/namespaces/{namespace}/cronworkflows" if namespace else f"{base}/cronworkflows"
    return f"{base}/{name}" if name else base


def schedule_words(schedule: str | list[str] | None) -> tuple[str, str]:
    """The schedule as written and in words; `-` for a poll- or after-triggered cron."""
    from shoal.api.cron_syntax import describe

    exprs = [schedule] if isinstance(schedule, str) else list(schedule or [])
    if not exprs:
        return "-", "-"
    return "; ".join(exprs), "; ".join(describe(e) for e in exprs)


def _when(value: str | None, now: datetime) -> str:
    """`in 5m` or `3h ago`; `-` when unknown."""
    when = parse_time(value)
    if when is None:
        return "-"
    return f"in {span(when - now)}" if when > now else f"{span(now - when)} ago"


def cron_rows(items: list[dict[str, Any]], now: datetime, *, all_namespaces: bool) -> list[str]:
    """The table: name, schedule, in words, next and last fire time, suspended."""
    rows = []
    for obj in sorted(
        items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
    ):
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        written, words = schedule_words(spec.get("schedule"))
        row = [
            meta["name"],
            written,
            words,
            _when(status.get("nextScheduleTime"), now),
            _when(status.get("lastScheduleTime"), now),
            "yes" if spec.get("suspend") else "no",
        ]
        rows.append([meta.get("namespace", ""), *row] if all_namespaces else row)
    headers = ["NAME", "SCHEDULE", "IN WORDS", "NEXT", "LAST", "SUSPENDED"]
    return table(["NAMESPACE", *headers] if all_namespaces else headers, rows)


def _as_json(obj: dict[str, Any]) -> dict[str, Any]:
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    _, words = schedule_words(spec.get("schedule"))
    return {
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "schedule": spec.get("schedule"),
        "description": None if words == "-" else words,
        "timezone": spec.get("timezone", "UTC"),
        "next": status.get("nextScheduleTime"),
        "last": status.get("lastScheduleTime"),
        "suspended": bool(spec.get("suspend")),
    }


def cron(args: argparse.Namespace) -> int:
    """Check the arguments (exit 2), then list, suspend or resume."""
    if args.action == "list" and args.name is not None:
        return fail("cron list takes no NAME", EXIT_INVALID)
    if args.action != "list" and args.name is None:
        return fail(f"cron {args.action} needs the CronWorkflow's NAME", EXIT_INVALID)

    async def run(api: KubeApi, namespace: str) -> int:
        if args.action == "list":
            return await _list(api, None if args.all_namespaces else namespace, args)
        return await _set_suspend(api, namespace, args.name, args.action == "suspend")

    return run_against_cluster(args, run)


async def _list(api: KubeApi, namespace: str | None, args: argparse.Namespace) -> int:
    from shoal.kube.api import ApiError

    try:
        items = (await api.get(cronworkflows_path(namespace))).get("items") or []
    except ApiError as err:
        if err.status == 404:
            raise CliError(
                "this cluster has no CronWorkflow resource (or no such namespace): "
                "install Shoal's CRDs first (kubectl apply -f crds/)"
            ) from None
        raise
    if args.output == "json":
        out(json.dumps([_as_json(o) for o in items], indent=2))
        return EXIT_OK
    if not items:
        note(f"No cronworkflows in {'any namespace' if namespace is None else namespace}.")
        return EXIT_OK
    for line in cron_rows(items, datetime.now(UTC), all_namespaces=namespace is None):
        out(line)
    return EXIT_OK


async def _set_suspend(api: KubeApi, namespace: str, name: str, suspend: bool) -> int:
    from shoal.kube.api import ApiError

    try:
        await api.merge_patch(cronworkflows_path(namespace, name), {"spec": {"suspend": suspend}})
    except ApiError as err:
        if err.status == 404:
            raise CliError(f"cronworkflow {name!r} not found in namespace {namespace!r}") from None
        raise
    out(f"cronworkflow {name} {'suspended' if suspend else 'resumed'}")
    return EXIT_OK
