"""`shoal list`: the Workflows of a namespace (or of all namespaces), one line each."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shoal.cli.common import (
    EXIT_OK,
    CliError,
    ago,
    clip,
    connection_args,
    duration,
    not_found,
    note,
    out,
    phase,
    run_against_cluster,
    table,
)

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["OUTPUTS", "configure", "list_rows", "list_workflows", "render", "wide_rows"]

OUTPUTS = ("text", "wide", "json", "yaml", "name")

PAGE_SIZE = 500


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal list`'s arguments and handler."""
    p.description = "List the Workflows of a namespace (or of all namespaces with -A)."
    p.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list workflows in every namespace"
    )
    p.add_argument(
        "-l",
        "--selector",
        metavar="SELECTOR",
        help="only workflows whose labels match (a Kubernetes label selector: app=etl,tier!=dev)",
    )
    p.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default="text",
        help="wide: also started, duration and labels; json, yaml: a List of the whole "
        "objects; name: workflow/NAME per line",
    )
    connection_args(p)
    p.set_defaults(handler=list_workflows)


def list_rows(items: list[dict[str, Any]], *, all_namespaces: bool) -> list[str]:
    """The table: name, phase, progress, age and message, sorted by namespace and name."""
    now = datetime.now(UTC)
    rows = []
    for obj in _sorted(items):
        meta, status = obj["metadata"], obj.get("status") or {}
        row = [
            meta["name"],
            phase(obj),
            str(status.get("progress") or "-"),
            ago(meta.get("creationTimestamp"), now),
            clip(str(status.get("message") or ""), 80),
        ]
        rows.append([meta.get("namespace", ""), *row] if all_namespaces else row)
    headers = ["NAME", "PHASE", "PROGRESS", "AGE", "MESSAGE"]
    return table(["NAMESPACE", *headers] if all_namespaces else headers, rows)


def wide_rows(items: list[dict[str, Any]], *, all_namespaces: bool) -> list[str]:
    """`-o wide`: the table plus when each run started, how long it took, and its labels."""
    now = datetime.now(UTC)
    rows = []
    for obj in _sorted(items):
        meta, status = obj["metadata"], obj.get("status") or {}
        labels = ",".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items()))
        row = [
            meta["name"],
            phase(obj),
            str(status.get("progress") or "-"),
            ago(meta.get("creationTimestamp"), now),
            str(status.get("startedAt") or "-"),
            duration(status) or "-",
            labels or "-",
            clip(str(status.get("message") or ""), 80),
        ]
        rows.append([meta.get("namespace", ""), *row] if all_namespaces else row)
    headers = ["NAME", "PHASE", "PROGRESS", "AGE", "STARTED", "DURATION", "LABELS", "MESSAGE"]
    return table(["NAMESPACE", *headers] if all_namespaces else headers, rows)


def _sorted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))


def render(items: list[dict[str, Any]], output: str, *, all_namespaces: bool) -> list[str]:
    """The listing in the chosen `-o` format, as lines (json and yaml: one document)."""
    if output == "name":
        return [f"workflow/{o['metadata']['name']}" for o in _sorted(items)]
    if output in ("json", "yaml"):
        doc = {"apiVersion": "v1", "kind": "List", "items": _sorted(items)}
        if output == "json":
            return [json.dumps(doc, indent=2, sort_keys=True, default=str)]
        import yaml

        return [yaml.safe_dump(doc, sort_keys=True, allow_unicode=True).rstrip("\n")]
    if output == "wide":
        return wide_rows(items, all_namespaces=all_namespaces)
    return list_rows(items, all_namespaces=all_namespaces)


async def _all_pages(
    api: KubeApi, path: str, namespace: str, selector: str | None = None
) -> list[dict[str, Any]]:
    """Every Workflow under `path` (matching `selector`), read a page at a time."""
    from shoal.kube.api import ApiError

    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query: dict[str, Any] = {"limit": PAGE_SIZE}
        if selector:
            query["labelSelector"] = selector
        if token:
            query["continue"] = token
        try:
            page = await api.get(path, **query)
        except ApiError as err:
            if err.status == 404:
                raise CliError(not_found(err, namespace)) from None
            raise
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def list_workflows(args: argparse.Namespace) -> int:
    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import workflows_path

        path = workflows_path(None if args.all_namespaces else namespace)
        items = await _all_pages(api, path, namespace, args.selector)
        if not items and args.output in ("text", "wide"):
            where = "any namespace" if args.all_namespaces else f"namespace {namespace}"
            matching = f" matching {args.selector!r}" if args.selector else ""
            note(f"No workflows{matching} in {where}.")
            return EXIT_OK
        for line in render(items, args.output, all_namespaces=args.all_namespaces):
            out(line)
        return EXIT_OK

    return run_against_cluster(args, run)
