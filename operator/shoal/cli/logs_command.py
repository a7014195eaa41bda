"""`shoal logs`: the logs of a workflow's pods, of one node, or of one fan-out item.

Live pods are read through the API server (`-f` streams them as they start); the logs
of pods already gone come from the PostgreSQL log archive when one is configured, and
a Workflow gone from the cluster is shown from its latest archived run.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from shoal.cli.common import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    FINISHED,
    CliError,
    connection_args,
    duration_seconds,
    fail,
    follow_workflow,
    get_workflow,
    node_order,
    note,
    out,
    phase,
    resolve_database,
    run_against_cluster,
    short_json,
    spec_nodes,
)
from shoal_worker.protocol import (
    ErrorMessage,
    LogMessage,
    OutputMessage,
    PlainLine,
    ProgressMessage,
    ProtocolViolation,
    ResultMessage,
    parse_display,
)

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi
    from shoal.kube.pods import PodView

__all__ = [
    "LOG_DRAIN_SECONDS",
    "LogTarget",
    "configure",
    "follow_all_logs",
    "log_query",
    "logs",
    "readable",
]

LOG_DRAIN_SECONDS = 30.0
"""After the followed workflow finished, how long its log streams get to end."""


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal logs`'s arguments and handler."""
    p.description = (
        "Print the log of each pod of the workflow, of one NODE, or of one "
        "--item of a fan-out node, prefixed with node[item] when there are several. "
        "Protocol lines (@shoal/2 ...) are shown as readable text."
    )
    p.add_argument("name", help="workflow name")
    p.add_argument("node", nargs="?", help="only this node")
    p.add_argument("--item", type=int, metavar="N", help="only item N of a fan-out node")
    p.add_argument(
        "--database-url",
        help="PostgreSQL log archive, read when the pods are gone (SHOAL_DATABASE_URL)",
    )
    p.add_argument("--database-url-file", help="a file holding the archive DSN (a mounted Secret)")
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="stream the logs as they are written, until the workflow (or NODE) finishes",
    )
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines of each pod's log")
    p.add_argument(
        "--since",
        type=duration_seconds,
        metavar="DURATION",
        help="only lines written in the last DURATION (90s, 5m, 2h) of each pod's log",
    )
    p.add_argument(
        "--timestamps",
        action="store_true",
        help="prefix each line with the time the container wrote it (RFC 3339)",
    )
    connection_args(p)
    p.set_defaults(handler=logs)


def log_query(args: argparse.Namespace) -> dict[str, str]:
    """The pod-log request's options for --tail, --since and --timestamps."""
    query: dict[str, str] = {}
    if args.tail is not None:
        query["tailLines"] = str(args.tail)
    if args.since is not None:
        query["sinceSeconds"] = str(args.since)
    if args.timestamps:
        query["timestamps"] = "true"
    return query


def readable(line: str) -> str:
    """A log line for people: protocol messages decoded, plain lines as they are."""
    msg = parse_display(line)
    if isinstance(msg, PlainLine):
        return msg.text
    if isinstance(msg, LogMessage):
        text = msg.message
        if msg.fields:
            text += " " + " ".join(f"{k}={short_json(v, 80)}" for k, v in msg.fields.items())
        return text if msg.level == "info" else f"{msg.level.upper()} {text}"
    if isinstance(msg, ProgressMessage):
        parts = ["progress"]
        if msg.percent is not None:
            parts.append(f"{msg.percent:g}%")
        if msg.current is not None:
            parts.append(
                f"{msg.current}/{msg.total}" if msg.total is not None else str(msg.current)
            )
        if msg.message:
            parts.append(msg.message)
        return " ".join(parts)
    if isinstance(msg, OutputMessage):
        return f"output {msg.key} = {short_json(msg.value)}"
    if isinstance(msg, ResultMessage):
        text = f"result: {msg.status}"
        if msg.message:
            text += f": {msg.message}"
        if msg.outputs:
            text += f" outputs {short_json(msg.outputs)}"
        return text
    if isinstance(msg, ErrorMessage):
        head = (
            f"ERROR {msg.error_type}: {msg.message}" if msg.error_type else f"ERROR {msg.message}"
        )
        return head + ("\n" + msg.traceback.rstrip("\n") if msg.traceback else "")
    assert isinstance(msg, ProtocolViolation)
    return f"{msg.text}  (not a valid protocol line: {msg.problem})"


class LogTarget:
    """Which pods `shoal logs` shows, and how each is labelled."""

    def __init__(self, obj: dict[str, Any], node: str | None, item: int | None) -> None:
        self.archive_dsn: str | None = None
        """Where to read the logs of nodes whose pods are gone (None: no archive)."""
        self.query: dict[str, str] = {}
        """Options of every pod-log request (tailLines, sinceSeconds, timestamps)."""
        self.obj = obj
        self.node = node
        self.item = item
        self.order = node_order(obj)
        self.fan_out = {
            str(n["name"])
            for n in spec_nodes(obj)
            if n.get("forEach") is not None or n.get("withSequence") is not None
        }
        self.several = (node is None and len(self.order) > 1) or (
            node in self.fan_out and item is None
        )

    def selector(self) -> str:
        from shoal.kube.naming import LABEL_ITEM, LABEL_NODE, LABEL_WORKFLOW_UID

        parts = [f"{LABEL_WORKFLOW_UID}={self.obj['metadata']['uid']}"]
        if self.node is not None:
            parts.append(f"{LABEL_NODE}={self.node}")
        if self.item is not None:
            parts.append(f"{LABEL_ITEM}={self.item}")
        return ",".join(parts)

    def label(self, node: str, index: int, attempt: int) -> str:
        text = f"{node}[{index}]" if node in self.fan_out else node
        return f"{text}#{attempt}" if attempt > 1 else text

    def sort_key(self, view: PodView) -> tuple[int, int, int, str]:
        rank = self.order.index(view.node) if view.node in self.order else len(self.order)
        return (rank, view.index, view.attempt, view.name)

    def finished(self, obj: dict[str, Any]) -> bool:
        if phase(obj) in FINISHED:
            return True
        if self.node is None:
            return False
        entry = ((obj.get("status") or {}).get("nodes") or {}).get(self.node) or {}
        return str(entry.get("phase") or "Pending") not in ("Pending", "Running")

    def gone_note(self, shown: set[str]) -> str | None:
        """Which started nodes have no pod left, said plainly (or None)."""
        nodes = (self.obj.get("status") or {}).get("nodes") or {}
        wanted = [self.node] if self.node is not None else self.order
        missing = [
            n
            for n in wanted
            if n not in shown
            and (
                (nodes.get(n) or {}).get("attempts")
                or (nodes.get(n) or {}).get("phase") == "Running"
            )
        ]
        if not missing:
            return None
        from shoal.kube.pod_gc import gone_reason

        strategy = ((self.obj.get("spec") or {}).get("podGC") or {}).get("strategy")
        why = gone_reason(strategy if isinstance(strategy, str) else None)
        return f"no log for {', '.join(missing)}: the pods are gone: {why}."


def _log_ready(view: PodView) -> bool:
    """The container has started, so the kubelet has a log to serve."""
    return view.running or view.terminated


def logs(args: argparse.Namespace) -> int:
    if args.item is not None and args.node is None:
        return fail("--item needs a NODE (the fan-out node whose item to show)", EXIT_INVALID)
    if args.tail is not None and args.tail < 0:
        return fail("--tail must be 0 or more", EXIT_INVALID)

    dsn = resolve_database(args)

    async def run(api: KubeApi, namespace: str) -> int:
        try:
            obj = await get_workflow(api, namespace, args.name)
        except CliError:
            if dsn is None:
                raise
            return await _archived_logs(dsn, namespace, args.name, args.node, args.item)
        target = LogTarget(obj, args.node, args.item)
        target.archive_dsn = dsn
        target.query = log_query(args)
        if args.node is not None and args.node not in target.order:
            raise CliError(
                f"workflow {args.name!r} has no node {args.node!r} "
                f"(its nodes: {', '.join(target.order)})"
            )
        if args.item is not None and args.node not in target.fan_out:
            raise CliError(f"node {args.node!r} is not a fan-out (forEach) node; drop --item")
        if args.follow:
            return await _follow_logs(api, namespace, target)
        return await _print_logs(api, namespace, target)

    return run_against_cluster(args, run)


async def _print_logs(api: KubeApi, namespace: str, target: LogTarget) -> int:
    from shoal.kube.api import ApiError, pods_path
    from shoal.kube.jobs import CONTAINER
    from shoal.kube.pods import pending_problem, read_pod

    listing = await api.get(pods_path(namespace), labelSelector=target.selector())
    views = [v for v in (read_pod(p) for p in listing.get("items") or []) if v is not None]
    views.sort(key=target.sort_key)
    prefix = target.several or len(views) > 1
    shown: set[str] = set()
    printed = False
    for view in views:
        label = target.label(view.node, view.index, view.attempt)
        shown.add(view.node)
        if not _log_ready(view):
            why = pending_problem(view) or view.waiting_reason or "Pending"
            note(f"{label}: pod {view.name} has not started yet ({why})")
            continue
        try:
            text = await api.text(
                pods_path(namespace, view.name) + "/log", container=CONTAINER, **target.query
            )
        except ApiError as err:
            note(f"{label}: cannot read the log of pod {view.name}: {err}")
            continue
        for line in text.splitlines():
            _emit(label if prefix else None, line, "timestamps" in target.query)
        printed = True
    if target.archive_dsn is not None:
        shown |= await _print_archived(target, shown, prefix)
    gone = target.gone_note(shown)
    if gone:
        note(gone)
    if not views and gone is None and not shown:
        now = phase(target.obj)
        name = target.obj["metadata"]["name"]
        note(
            f"workflow {name} ({now}) ran no pods"
            if now in FINISHED
            else f"workflow {name} ({now}) has no pods yet (shoal logs -f waits for them)"
        )
    return EXIT_OK if printed or shown or gone is None else EXIT_FAILED


async def _print_archived(target: LogTarget, shown: set[str], prefix: bool) -> set[str]:
    """Print archived lines of the nodes whose pods are gone; return the nodes printed."""
    import asyncpg

    from shoal.archive.reader import read_logs

    assert target.archive_dsn is not None
    wanted = [target.node] if target.node is not None else target.order
    missing = [n for n in wanted if n not in shown]
    if not missing:
        return set()
    conn = await asyncpg.connect(target.archive_dsn, timeout=30)
    found: set[str] = set()
    try:
        for node in missing:
            after = 0
            while lines := await read_logs(
                conn, target.obj["metadata"]["uid"], node, index=target.item, after_id=after
            ):
                for entry in lines:
                    label = target.label(entry.node, entry.index, entry.attempt)
                    _emit(label if prefix or target.several else None, entry.line)
                after = lines[-1].id
                found.add(node)
    finally:
        await conn.close()
    return found


async def _archived_logs(
    dsn: str, namespace: str, name: str, node: str | None, item: int | None
) -> int:
    """`shoal logs` for a Workflow that no longer exists: its latest archived run."""
    import asyncpg

    from shoal.archive.reader import find_run, get_run

    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        summary = await find_run(conn, namespace, name)
        detail = await get_run(conn, summary.uid) if summary is not None else None
    finally:
        await conn.close()
    if detail is None:
        raise CliError(f"workflow {name!r} not found in namespace {namespace!r} nor the archive")
    obj = {"metadata": {"name": name, "uid": detail.run.uid}, "spec": detail.spec}
    target = LogTarget(obj, node, item)
    target.archive_dsn = dsn
    note(f"workflow {name} is gone; showing its archived run ({detail.run.phase})")
    shown = await _print_archived(target, set(), target.several)
    if not shown:
        note(f"the archive holds no log lines for workflow {name}")
        return EXIT_FAILED
    return EXIT_OK


def _emit(label: str | None, line: str, stamped: bool = False) -> None:
    """Print one log line, decoded; a kubelet timestamp stays in front of it."""
    stamp = ""
    if stamped:
        head, sep, rest = line.partition(" ")
        if sep:
            stamp, line = head + " ", rest
    for part in readable(line).split("\n"):
        text = stamp + part
        out(f"{label} | {text}" if label else text)


async def follow_all_logs(api: KubeApi, namespace: str, obj: dict[str, Any]) -> int:
    """Every node's log of the workflow `obj`, labelled, as pods start, until it ends
    (`shoal submit --log`)."""
    return await _follow_logs(api, namespace, LogTarget(obj, None, None))


async def _follow_logs(api: KubeApi, namespace: str, target: LogTarget) -> int:
    """Stream every pod's log concurrently, picking up pods as they start, until the
    workflow (or the node) has finished and every stream has ended."""
    from shoal.kube.api import pods_path
    from shoal.kube.listwatch import watch_events
    from shoal.kube.pods import read_pod

    name = target.obj["metadata"]["name"]
    followers: dict[str, asyncio.Task[None]] = {}
    shown: set[str] = set()

    def consider(pod: dict[str, Any]) -> None:
        view = read_pod(pod)
        if view is None or view.name in followers or not _log_ready(view):
            return
        label = target.label(view.node, view.index, view.attempt)
        shown.add(view.node)
        followers[view.name] = asyncio.create_task(
            _stream_pod(api, namespace, view.name, label if target.several else None, target.query)
        )

    async def pods() -> None:
        async for kind, pod in watch_events(
            api, pods_path(namespace), labelSelector=target.selector()
        ):
            if kind in ("ADDED", "MODIFIED"):
                consider(pod)

    pod_watch = asyncio.create_task(pods())
    try:
        if not target.finished(target.obj):
            await follow_workflow(api, namespace, name, lambda _: None, done=target.finished)
        # Pods the watch had not delivered yet when the workflow finished.
        listing = await api.get(pods_path(namespace), labelSelector=target.selector())
        for pod in listing.get("items") or []:
            consider(pod)
    finally:
        pod_watch.cancel()
        await asyncio.gather(pod_watch, return_exceptions=True)
    if followers:
        _, pending = await asyncio.wait(list(followers.values()), timeout=LOG_DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            note(f"{len(pending)} log stream(s) had not ended {LOG_DRAIN_SECONDS:g}s after the end")
        await asyncio.gather(*followers.values(), return_exceptions=True)
    gone = target.gone_note(shown)
    if gone:
        note(gone)
    return EXIT_OK if followers or gone is None else EXIT_FAILED


async def _stream_pod(
    api: KubeApi, namespace: str, pod: str, label: str | None, query: dict[str, str]
) -> None:
    """Follow one pod's log to its end; a broken stream is re-read past the lines seen."""
    import httpx

    from shoal.kube.api import ApiError, pods_path
    from shoal.kube.jobs import CONTAINER
    from shoal.kube.listwatch import MAX_STREAM_FAILURES

    path = pods_path(namespace, pod) + "/log"
    seen = 0
    for attempt in range(MAX_STREAM_FAILURES):
        count = 0
        try:
            async for line in api.lines(path, follow="true", container=CONTAINER, **query):
                count += 1
                if count > seen:
                    seen = count
                    _emit(label, line, "timestamps" in query)
            return
        except ApiError as err:
            if err.status == 404:
                note(f"{label or pod}: the pod was deleted")
                return
            transient = err.status in (0, 429) or err.status >= 500
            if not transient or attempt == MAX_STREAM_FAILURES - 1:
                note(f"{label or pod}: cannot read the log of pod {pod}: {err}")
                return
        except httpx.HTTPError as err:
            if attempt == MAX_STREAM_FAILURES - 1:
                note(f"{label or pod}: the log stream of pod {pod} broke: {err!r}")
                return
        await asyncio.sleep(min(0.2 * 2**attempt, 5.0))  # back off before re-reading
