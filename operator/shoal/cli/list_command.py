"""`shoal list`: the Workflows of a namespace (or of all namespaces), one line each."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shoal.cli.common import (
    EXIT_OK,
    CliError,
    ago,
    clip,
    connection_args,
    not_found,
    note,
    out,
    phase,
    run_against_cluster,
    table,
)

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["configure", "list_rows", "list_workflows"]

PAGE_SIZE = 500


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal list`'s arguments and handler."""
    p.description = "List the Workflows of a namespace (or of all namespaces with -A)."
    p.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list workflows in every namespace"
    )
    connection_args(p)
    p.set_defaults(handler=list_workflows)


def list_rows(items: list[dict[str, Any]], *, all_namespaces: bool) -> list[str]:
    """The table: name, phase, progress, age and message, sorted by namespace and name."""
    now = datetime.now(UTC)
    rows = []
    for obj in sorted(
        items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
    ):
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


async def _all_pages(api: KubeApi, path: str, namespace: str) -> list[dict[str, Any]]:
    """Every Workflow under `path`, read a page at a time."""
    from shoal.kube.api import ApiError

    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        query: dict[str, Any] = {"limit": PAGE_SIZE}
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
        items = await _all_pages(api, path, namespace)
        if not items:
            where = "any namespace" if args.all_namespaces else f"namespace {namespace}"
            note(f"No workflows in {where}.")
            return EXIT_OK
        for line in list_rows(items, all_namespaces=args.all_namespaces):
            out(line)
        return EXIT_OK

    return run_against_cluster(args, run)
