"""`shoal submit|get|list|logs|stop|retry`: the commands that work against a cluster.

They talk to the API server through `shoal.kube.api.KubeApi` (httpx, asyncio), which is
imported inside the handlers only: `shoal run` and `shoal validate` never load httpx,
kopf or the kubernetes package. Every wait has a deadline or ends with the workflow,
watches reconnect when the server ends them, and an expected failure (not found,
unreachable, refused) is one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import math
import os
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml

from shoal.api.cron import CronWorkflow
from shoal.cli.local_commands import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    _pick,
    _report_invalid,
    parse_params,
)
from shoal.core import jsonbounds
from shoal.core.validation import InvalidWorkflow, Problem
from shoal.manifests import compile_manifest, load_file
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

FINISHED = frozenset({"Succeeded", "Failed", "Error", "Stopped"})
RETRYABLE = frozenset({"Failed", "Stopped"})
WATCH_SECONDS = 240
"""How long one watch request lasts on the server before it is reconnected."""
WATCH_GRACE = 30.0
"""A watch connection that outlives its server-side timeout by this much is dropped."""
MAX_STREAM_FAILURES = 6
REMOVAL_SECONDS = 120.0
"""How long `retry` waits for the old Jobs and pods to be deleted, unless --timeout."""
LOG_DRAIN_SECONDS = 30.0
"""After the followed workflow finished, how long its log streams get to end."""
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class CliError(Exception):
    """An expected failure: one line for the user, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


# -- argument parsing ------------------------------------------------------------------------


def _connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n",
        "--namespace",
        help="namespace (default: the kubeconfig context's namespace, else 'default')",
    )
    p.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config or in-cluster)",
    )


def _timeout_arg(p: argparse.ArgumentParser, default: float | None, what: str) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        default=default,
        metavar="SECONDS",
        help=f"give up {what} after this long (exit 1)"
        + ("" if default is None else f"; default {default:g}"),
    )


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the cluster commands on `shoal`'s subcommand parser."""
    submit_p = sub.add_parser(
        "submit",
        help="validate a Workflow manifest, then create it in the cluster",
        description="Validate a Workflow manifest exactly as `shoal run` does (exit 2 and "
        "nothing is created when it is invalid), then create it. The -p parameters are "
        "merged into spec.parameters, so the Workflow records what it ran with.",
    )
    submit_p.add_argument("file", help="manifest (YAML)")
    submit_p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a parameter; VALUE is read as JSON when it parses, else as text",
    )
    submit_p.add_argument("--name", help="which document to submit when the file holds several")
    submit_p.add_argument(
        "-w", "--watch", action="store_true", help="follow the workflow until it finishes"
    )
    submit_p.add_argument(
        "-o", "--output", choices=["text", "name"], default="text", help="name: print the name only"
    )
    _timeout_arg(submit_p, None, "watching")
    _connection_args(submit_p)
    submit_p.set_defaults(handler=submit)

    get_p = sub.add_parser(
        "get",
        help="show a workflow: phase, progress, nodes, outputs",
        description="Show one Workflow's status: phase, progress, times, message, a table "
        "of its nodes and their outputs. A Workflow gone from the cluster is read from the "
        "archive (PostgreSQL), when one is configured. --node shows one node with every "
        "finished attempt of every item (from the archive).",
    )
    get_p.add_argument("name", help="workflow name")
    get_p.add_argument(
        "-o",
        "--output",
        choices=["text", "json", "yaml"],
        default="text",
        help="json, yaml: the raw status",
    )
    from shoal.cli import get_command  # it builds on this module

    get_command.add_arguments(get_p)
    _connection_args(get_p)
    get_p.set_defaults(handler=get)

    list_p = sub.add_parser(
        "list",
        aliases=["ls"],
        help="list workflows: name, phase, progress, age, message",
        description="List the Workflows of a namespace (or of all namespaces with -A).",
    )
    list_p.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list workflows in every namespace"
    )
    _connection_args(list_p)
    list_p.set_defaults(handler=list_workflows)

    logs_p = sub.add_parser(
        "logs",
        help="print the logs of a workflow's pods (or a node's, or one item's)",
        description="Print the log of each pod of the workflow, of one NODE, or of one "
        "--item of a fan-out node, prefixed with node[item] when there are several. "
        "Protocol lines (@shoal/2 ...) are shown as readable text.",
    )
    logs_p.add_argument("name", help="workflow name")
    logs_p.add_argument("node", nargs="?", help="only this node")
    logs_p.add_argument("--item", type=int, metavar="N", help="only item N of a fan-out node")
    logs_p.add_argument(
        "--database-url",
        help="PostgreSQL log archive, read when the pods are gone (SHOAL_DATABASE_URL)",
    )
    logs_p.add_argument(
        "--database-url-file", help="a file holding the archive DSN (a mounted Secret)"
    )
    logs_p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="stream the logs as they are written, until the workflow (or NODE) finishes",
    )
    _connection_args(logs_p)
    logs_p.set_defaults(handler=logs)

    stop_p = sub.add_parser(
        "stop",
        help="stop a running workflow (spec.stop: true)",
        description="Ask the operator to stop a workflow: its pods are deleted, nodes not "
        "yet started are Omitted, and the workflow ends Stopped.",
    )
    stop_p.add_argument("name", help="workflow name")
    stop_p.add_argument(
        "--wait", action="store_true", help="wait until the workflow is Stopped (exit 1 if not)"
    )
    _timeout_arg(stop_p, 120.0, "waiting")
    _connection_args(stop_p)
    stop_p.set_defaults(handler=stop)

    retry_p = sub.add_parser(
        "retry",
        help="re-run the failed nodes of a Failed or Stopped workflow, keeping the rest",
        description="Re-run what failed (Failed and Omitted nodes, and onFailure nodes "
        "that were Skipped) in the same Workflow. Succeeded nodes keep their outputs and "
        "are not run again.",
    )
    retry_p.add_argument("name", help="workflow name")
    retry_p.add_argument(
        "-w", "--watch", action="store_true", help="follow the workflow until it finishes"
    )
    retry_p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up after this long (exit 1): waiting for the old Jobs to go "
        f"(default {REMOVAL_SECONDS:g}), and watching",
    )
    _connection_args(retry_p)
    retry_p.set_defaults(handler=retry)


# -- connecting and error handling -----------------------------------------------------------


def _default_namespace(kubeconfig: str | None) -> str:
    if kubeconfig is None and IN_CLUSTER_NAMESPACE.exists():
        return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except Exception:  # no usable kubeconfig: load_credentials reports it
        return "default"
    namespace = ((active or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else "default"


Body = Callable[["KubeApi", str], Awaitable[int]]


def _run(args: argparse.Namespace, body: Body) -> int:
    """Connect, run `body(api, namespace)` on an event loop, and turn failures into lines."""
    try:
        import httpx

        from shoal.kube.api import ApiError, KubeApi, load_credentials
    except ImportError as err:
        return _fail(
            f"the cluster commands need the operator extra ({err.name} is missing): "
            "pip install 'shoal[operator]'"
        )
    missing = [
        p
        for p in (args.kubeconfig or "").split(os.pathsep)
        if p and not Path(p).expanduser().exists()
    ]
    if missing and len(missing) == len(args.kubeconfig.split(os.pathsep)):
        return _fail(f"kubeconfig {args.kubeconfig} does not exist")
    try:
        creds = load_credentials(args.kubeconfig)
    except Exception as err:
        where = args.kubeconfig or "the default kubeconfig"
        return _fail(f"cannot load Kubernetes credentials from {where}: {err}")
    namespace = args.namespace or _default_namespace(args.kubeconfig)

    async def main() -> int:
        api = KubeApi(creds)
        try:
            return await body(api, namespace)
        finally:
            await api.close()

    try:
        return asyncio.run(main())
    except CliError as err:
        return _fail(str(err), err.code)
    except ApiError as err:
        if err.status == 0:
            cause = err.__cause__
            why = f"{type(cause).__name__}: {cause}" if cause is not None else str(err)
            return _fail(f"cannot reach the Kubernetes API server at {creds.host} ({why})")
        return _fail(f"the API server refused: {err}")
    except httpx.HTTPError as err:
        return _fail(f"lost the connection to the API server at {creds.host}: {err!r}")
    except KeyboardInterrupt:
        return 130


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def get_workflow(api: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    """The Workflow, or a CliError that names what is missing."""
    from shoal.kube.api import ApiError, workflows_path

    try:
        return await api.get(workflows_path(namespace, name))
    except ApiError as err:
        if err.status == 404:
            raise CliError(_not_found(err, namespace, name)) from None
        raise


def _not_found(err: Exception, namespace: str, name: str | None = None) -> str:
    if "could not find the requested resource" in str(err):
        return (
            "this cluster has no Workflow resource (shoal.dev/v1alpha1): "
            "install Shoal's CRDs first (kubectl apply -f crds/)"
        )
    if name is None:
        return f"namespace {namespace!r} not found"
    return f"workflow {name!r} not found in namespace {namespace!r}"


# -- watching ----------------------------------------------------------------------------------


async def _lines_until(
    api: KubeApi, path: str, params: dict[str, Any], until: float
) -> AsyncGenerator[str, None]:
    """The lines of one streamed response, cut off at monotonic time `until`.

    The read runs in this task under `asyncio.timeout` (not `wait_for`, whose inner task
    can swallow a cancellation that arrives as a line does, on Python 3.11).
    """
    stream = cast(AsyncGenerator[str, None], api.lines(path, **params))
    async with contextlib.aclosing(stream):
        while True:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    line = await anext(stream)
            except (StopAsyncIteration, TimeoutError):
                return
            yield line


async def watch_events(
    api: KubeApi, path: str, deadline: float | None = None, **params: Any
) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
    """List, then watch: `(type, object)` pairs.

    A listing is announced by ("RESET", {}) (forget what the earlier ones said), replays
    what exists as ADDED events, and ends with ("SYNCED", {}). A watch the server ends is
    reconnected from the last resourceVersion seen; an expired one (410 Gone) lists
    again. Ends at the monotonic `deadline`, if one is given.
    """
    import httpx

    from shoal.kube.api import ApiError

    version: str | None = None
    failures = 0
    while deadline is None or time.monotonic() < deadline:
        if version is None:
            listing = await api.get(path, **params)
            yield "RESET", {}
            for item in listing.get("items") or []:
                yield "ADDED", item
            version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
            yield "SYNCED", {}
        now = time.monotonic()
        seconds = (
            WATCH_SECONDS
            if deadline is None
            else max(1, min(WATCH_SECONDS, math.ceil(deadline - now)))
        )
        until = now + seconds + WATCH_GRACE
        if deadline is not None:
            until = min(until, deadline)
        query = {
            **params,
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds),
        }
        try:
            async with contextlib.aclosing(_lines_until(api, path, query, until)) as lines:
                async for line in lines:
                    if not line.strip():
                        continue
                    event = jsonbounds.loads(line)
                    kind, obj = str(event.get("type")), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            version = None  # too old: list again
                            break
                        raise ApiError(
                            int(obj.get("code") or 500),
                            str(obj.get("reason") or "WatchError"),
                            str(obj.get("message") or obj),
                        )
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind != "BOOKMARK":
                        yield kind, obj
            failures = 0
        except ApiError as err:
            if err.status == 410:
                version = None
                continue
            if err.status not in (0, 429) and err.status < 500:
                raise
            failures += 1
            if failures >= MAX_STREAM_FAILURES:
                raise
            await asyncio.sleep(min(0.2 * 2**failures, 5.0))  # back off before reconnecting
        except (httpx.HTTPError, ValueError):
            failures += 1
            if failures >= MAX_STREAM_FAILURES:
                raise
            await asyncio.sleep(min(0.2 * 2**failures, 5.0))


class WatchTimeout(Exception):
    """The deadline passed before the workflow finished; holds the last state seen."""

    def __init__(self, last: dict[str, Any]) -> None:
        super().__init__("deadline passed")
        self.last = last


async def follow_workflow(
    api: KubeApi,
    namespace: str,
    name: str,
    on_change: Callable[[dict[str, Any]], None],
    *,
    seconds: float | None = None,
    done: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """Watch one Workflow until `done` (default: finished); returns its last state."""
    from shoal.kube.api import workflows_path

    finished = done or (lambda obj: _phase(obj) in FINISHED)
    last = await get_workflow(api, namespace, name)  # a clear error when it is missing
    deadline = None if seconds is None else time.monotonic() + seconds
    uid = last["metadata"]["uid"]
    events = watch_events(
        api, workflows_path(namespace), deadline, fieldSelector=f"metadata.name={name}"
    )
    gone = CliError(f"workflow {name!r} was deleted from namespace {namespace!r}")
    seen = False
    try:
        async for kind, obj in events:
            if kind in ("RESET", "SYNCED"):
                if kind == "SYNCED" and not seen:
                    raise gone
                seen = False
                continue
            if (obj.get("metadata") or {}).get("uid") != uid or kind == "DELETED":
                raise gone
            seen = True
            last = obj
            on_change(obj)
            if finished(obj):
                return obj
    finally:
        await events.aclose()
    raise WatchTimeout(last)


# -- reading a workflow --------------------------------------------------------------------------


def _phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "Pending")


def _spec_nodes(obj: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = (obj.get("spec") or {}).get("nodes") or []
    return [n for n in nodes if isinstance(n, dict) and n.get("name")]


def node_order(obj: dict[str, Any]) -> list[str]:
    """Node names in manifest order, then any the status has that the spec lacks."""
    names = [str(n["name"]) for n in _spec_nodes(obj)]
    extra = [n for n in ((obj.get("status") or {}).get("nodes") or {}) if n not in names]
    return names + sorted(extra)


def short_json(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, separators=(", ", ": "), default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(text: str, limit: int) -> str:
    first = text.splitlines()[0] if text else ""
    if len(first) < len(text):
        first += " …"
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _ago(value: str | None, now: datetime | None = None) -> str:
    when = _parse_time(value)
    if when is None:
        return "-"
    return _span((now or datetime.now(UTC)) - when)


def _span(delta: Any) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _duration(status: dict[str, Any]) -> str | None:
    start, end = _parse_time(status.get("startedAt")), _parse_time(status.get("finishedAt"))
    if start is None or end is None:
        return None
    return f"{(end - start).total_seconds():.1f}s"


def _items(entry: dict[str, Any]) -> str:
    items = entry.get("items")
    if not isinstance(items, dict):
        return "-"
    done = int(items.get("succeeded") or 0) + int(items.get("failed") or 0)
    text = f"{done}/{int(items.get('total') or 0)}"
    if items.get("running"):
        text += f" ({items['running']} running)"
    if items.get("failed"):
        text += f" ({items['failed']} failed)"
    return text


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers) - 1)]
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return lines


def verdict(obj: dict[str, Any]) -> str:
    """`workflow hello: Succeeded (2/2 nodes, in 3.1s)`, and the message if there is one."""
    status = obj.get("status") or {}
    name = obj["metadata"]["name"]
    text = f"workflow {name}: {_phase(obj)}"
    details = [f"{status['progress']} nodes"] if status.get("progress") else []
    took = _duration(status)
    if took and _phase(obj) in FINISHED:
        details.append(f"in {took}")
    if details:
        text += f" ({', '.join(details)})"
    if status.get("message"):
        text += f": {status['message']}"
    return text


def describe_workflow(obj: dict[str, Any]) -> list[str]:
    """`shoal get`: the workflow, then a table of its nodes, then their outputs."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    created = meta.get("creationTimestamp")
    lines = [
        f"Name:       {meta.get('name')}",
        f"Namespace:  {meta.get('namespace')}",
        f"Phase:      {_phase(obj)}",
        f"Progress:   {status.get('progress') or '-'}",
        f"Created:    {created} ({_ago(created)} ago)",
    ]
    if status.get("startedAt"):
        lines.append(f"Started:    {status['startedAt']}")
    if status.get("finishedAt"):
        took = _duration(status)
        lines.append(f"Finished:   {status['finishedAt']}" + (f" (took {took})" if took else ""))
    if status.get("retries"):
        lines.append(f"Retries:    {status['retries']}")
    params = (obj.get("spec") or {}).get("parameters")
    if params:
        lines.append(f"Parameters: {short_json(params)}")
    if status.get("message"):
        lines.append(f"Message:    {status['message']}")
    nodes = status.get("nodes") or {}
    rows = []
    for name in node_order(obj):
        entry = nodes.get(name) or {}
        exit_code = entry.get("exitCode")
        message = str(entry.get("message") or "")
        if entry.get("progress") is not None and entry.get("phase") == "Running":
            message = f"{entry['progress']:.0f}% {message}".strip()
        rows.append(
            [
                name,
                str(entry.get("phase") or "Pending"),
                str(entry.get("attempts") or 0),
                _items(entry),
                "-" if exit_code is None else str(exit_code),
                _clip(message, 100),
            ]
        )
    lines.append("")
    lines.extend(table(["NODE", "PHASE", "ATTEMPTS", "ITEMS", "EXIT", "MESSAGE"], rows))
    failed_items = [
        (name, item)
        for name in node_order(obj)
        for item in (nodes.get(name) or {}).get("failedItems") or []
    ]
    if failed_items:
        lines.extend(["", "Failed items:"])
        for name, item in failed_items:
            lines.append(f"  {name}[{item.get('index')}]: {_clip(str(item.get('message')), 120)}")
    outputs = [
        (name, nodes[name])
        for name in node_order(obj)
        if name in nodes and (nodes[name].get("outputs") or nodes[name].get("outputsOmitted"))
    ]
    if outputs:
        lines.extend(["", "Outputs:"])
        for name, entry in outputs:
            if entry.get("outputsOmitted"):
                lines.append(f"  {name}: ({entry['outputsOmitted']})")
            for key, value in (entry.get("outputs") or {}).items():
                lines.append(f"  {name}.{key} = {short_json(value, 300)}")
    return lines


class Transitions:
    """Prints one plain line per node change (phase, attempt) and the workflow's phase."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, int]] = {}
        self.phase: str | None = None

    def __call__(self, obj: dict[str, Any]) -> None:
        status = obj.get("status") or {}
        nodes = status.get("nodes") or {}
        order = node_order(obj)
        width = max((len(n) for n in order), default=4)
        for name in order:
            entry = nodes.get(name) or {}
            phase = str(entry.get("phase") or "Pending")
            attempts = int(entry.get("attempts") or 0)
            previous = self.seen.get(name)
            self.seen[name] = (phase, attempts)
            if previous == (phase, attempts) or (previous is None and phase == "Pending"):
                continue
            if previous is not None and previous[0] == phase and phase != "Running":
                continue
            _out(f"{name.ljust(width)}  {phase.ljust(9)}  {self._detail(entry, attempts)}".rstrip())
        phase = _phase(obj)
        if phase != self.phase:
            self.phase = phase
            if phase not in FINISHED and phase != "Pending":
                _out(f"workflow {obj['metadata']['name']}: {phase}")

    @staticmethod
    def _detail(entry: dict[str, Any], attempts: int) -> str:
        parts = []
        if entry.get("phase") == "Running" and attempts > 1:
            parts.append(f"attempt {attempts}")
        if isinstance(entry.get("items"), dict):
            parts.append(f"items {_items(entry)}")
        if entry.get("exitCode") not in (None, 0):
            parts.append(f"exit {entry['exitCode']}")
        if entry.get("message"):
            parts.append(_clip(str(entry["message"]), 200))
        if entry.get("outputs"):
            parts.append(f"outputs {short_json(entry['outputs'])}")
        elif entry.get("outputsOmitted"):
            parts.append(str(entry["outputsOmitted"]))
        return "  ".join(parts)


async def _watch_to_end(api: KubeApi, namespace: str, name: str, seconds: float | None) -> int:
    try:
        final = await follow_workflow(api, namespace, name, Transitions(), seconds=seconds)
    except WatchTimeout as err:
        raise CliError(
            f"gave up after {seconds or 0:g}s: workflow {name!r} is still {_phase(err.last)} "
            f"(it keeps running; see `shoal get {name} -n {namespace}`)"
        ) from None
    _out(verdict(final))
    return EXIT_OK if _phase(final) == "Succeeded" else EXIT_FAILED


# -- submit ------------------------------------------------------------------------------------


def _document(path: str, index: int) -> dict[str, Any]:
    """The file's `index`-th YAML document as written (load_file already parsed it)."""
    text = Path(path).read_text(encoding="utf-8")
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    doc = docs[index]
    assert isinstance(doc, dict)
    return doc


def submission(raw: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The object to create: the manifest as written, its parameters merged with `-p`."""
    body = copy.deepcopy(raw)
    body.pop("status", None)
    meta = body.setdefault("metadata", {})
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
        meta.pop(key, None)
    spec = body.setdefault("spec", {})
    spec["parameters"] = {**(spec.get("parameters") or {}), **params}
    if not spec["parameters"]:
        del spec["parameters"]
    return body


def submit(args: argparse.Namespace) -> int:
    try:
        params = parse_params(args.param)
        manifests = load_file(args.file)
        manifest = _pick(manifests, args.name, args.file)
        if isinstance(manifest.resource, CronWorkflow):
            raise InvalidWorkflow(
                [
                    Problem(
                        "shoal submit creates Workflows; a CronWorkflow is applied as is "
                        "(kubectl apply -f) and stamps out Workflows on its schedule",
                        field="kind",
                    )
                ],
                args.file,
            )
        compile_manifest(manifest, params)
        meta = manifest.resource.metadata
        if not meta.name and not meta.generate_name:
            raise InvalidWorkflow(
                [Problem("set metadata.name or metadata.generateName", field="metadata")],
                args.file,
            )
        body = submission(_document(args.file, manifests.index(manifest)), params)
    except InvalidWorkflow as err:
        return _report_invalid(err)

    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import ApiError, workflows_path

        declared = body["metadata"].get("namespace")
        if declared and args.namespace and declared != args.namespace:
            raise CliError(
                f"{args.file}: the manifest's namespace {declared!r} differs from "
                f"--namespace {args.namespace!r}",
                EXIT_INVALID,
            )
        ns = declared or namespace
        body["metadata"]["namespace"] = ns
        wanted = body["metadata"].get("name") or body["metadata"].get("generateName")
        try:
            created = await api.request("POST", workflows_path(ns), body=body)
        except ApiError as err:
            if err.status == 409:
                raise CliError(
                    f"workflow {wanted!r} already exists in namespace {ns!r} (delete it, or "
                    "use metadata.generateName for a new name per submission)"
                ) from None
            if err.status == 404:
                raise CliError(_not_found(err, ns)) from None
            if err.status in (400, 422):
                raise CliError(
                    f"{args.file}: the API server rejected the workflow: {err}", EXIT_INVALID
                ) from None
            raise
        name = created["metadata"]["name"]
        if args.output == "name":
            _out(name)
        else:
            _out(f"workflow {name} created in namespace {ns}")
        if not args.watch:
            return EXIT_OK
        return await _watch_to_end(api, ns, name, args.timeout)

    return _run(args, run)


# -- get and list --------------------------------------------------------------------------------


def get(args: argparse.Namespace) -> int:
    """Live from the cluster, else from the archive (shoal.cli.get_command)."""
    from shoal.cli import get_command

    problem = get_command.check(args)
    if problem:
        return _fail(problem, EXIT_INVALID)
    dsn = get_command.resolve(args)

    async def run(api: KubeApi, namespace: str) -> int:
        return await get_command.show(api, namespace, args, dsn)

    return _run(args, run)


def list_rows(items: list[dict[str, Any]], *, all_namespaces: bool) -> list[str]:
    now = datetime.now(UTC)
    rows = []
    for obj in sorted(
        items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
    ):
        meta, status = obj["metadata"], obj.get("status") or {}
        row = [
            meta["name"],
            _phase(obj),
            str(status.get("progress") or "-"),
            _ago(meta.get("creationTimestamp"), now),
            _clip(str(status.get("message") or ""), 80),
        ]
        rows.append([meta.get("namespace", ""), *row] if all_namespaces else row)
    headers = ["NAME", "PHASE", "PROGRESS", "AGE", "MESSAGE"]
    return table(["NAMESPACE", *headers] if all_namespaces else headers, rows)


def list_workflows(args: argparse.Namespace) -> int:
    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import ApiError, workflows_path

        path = workflows_path(None if args.all_namespaces else namespace)
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query: dict[str, Any] = {"limit": 500}
            if token:
                query["continue"] = token
            try:
                page = await api.get(path, **query)
            except ApiError as err:
                if err.status == 404:
                    raise CliError(_not_found(err, namespace)) from None
                raise
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        if not items:
            where = "any namespace" if args.all_namespaces else f"namespace {namespace}"
            _note(f"No workflows in {where}.")
            return EXIT_OK
        for line in list_rows(items, all_namespaces=args.all_namespaces):
            _out(line)
        return EXIT_OK

    return _run(args, run)


# -- logs ----------------------------------------------------------------------------------------


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
        self.obj = obj
        self.node = node
        self.item = item
        self.order = node_order(obj)
        self.fan_out = {str(n["name"]) for n in _spec_nodes(obj) if n.get("forEach") is not None}
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
        if _phase(obj) in FINISHED:
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
        which = ", ".join(missing)
        return (
            f"no log for {which}: the pods are gone (the operator deletes a node's pods once it "
            "succeeded, and all of them with the workflow); pass --database-url (or set "
            "SHOAL_DATABASE_URL) to read them from the PostgreSQL log archive."
        )


def _log_ready(view: PodView) -> bool:
    """The container has started, so the kubelet has a log to serve."""
    return view.running or view.terminated


def logs(args: argparse.Namespace) -> int:
    if args.item is not None and args.node is None:
        return _fail("--item needs a NODE (the fan-out node whose item to show)", EXIT_INVALID)

    from shoal.archive.db import resolve_dsn

    dsn = resolve_dsn(args.database_url, args.database_url_file)

    async def run(api: KubeApi, namespace: str) -> int:
        try:
            obj = await get_workflow(api, namespace, args.name)
        except CliError:
            if dsn is None:
                raise
            return await _archived_logs(dsn, namespace, args.name, args.node, args.item)
        target = LogTarget(obj, args.node, args.item)
        target.archive_dsn = dsn
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

    return _run(args, run)


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
            _note(f"{label}: pod {view.name} has not started yet ({why})")
            continue
        try:
            text = await api.text(pods_path(namespace, view.name) + "/log", container=CONTAINER)
        except ApiError as err:
            _note(f"{label}: cannot read the log of pod {view.name}: {err}")
            continue
        for line in text.splitlines():
            _emit(label if prefix else None, line)
        printed = True
    if target.archive_dsn is not None:
        shown |= await _print_archived(target, shown, prefix)
    note = target.gone_note(shown)
    if note:
        _note(note)
    if not views and note is None and not shown:
        phase = _phase(target.obj)
        name = target.obj["metadata"]["name"]
        _note(
            f"workflow {name} ({phase}) ran no pods"
            if phase in FINISHED
            else f"workflow {name} ({phase}) has no pods yet (shoal logs -f waits for them)"
        )
    return EXIT_OK if printed or shown or note is None else EXIT_FAILED


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
    _note(f"workflow {name} is gone; showing its archived run ({detail.run.phase})")
    shown = await _print_archived(target, set(), target.several)
    if not shown:
        _note(f"the archive holds no log lines for workflow {name}")
        return EXIT_FAILED
    return EXIT_OK


def _emit(label: str | None, line: str) -> None:
    for part in readable(line).split("\n"):
        _out(f"{label} | {part}" if label else part)


async def _follow_logs(api: KubeApi, namespace: str, target: LogTarget) -> int:
    """Stream every pod's log concurrently, picking up pods as they start, until the
    workflow (or the node) has finished and every stream has ended."""
    from shoal.kube.api import pods_path
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
            _stream_pod(api, namespace, view.name, label if target.several else None)
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
            _note(
                f"{len(pending)} log stream(s) had not ended {LOG_DRAIN_SECONDS:g}s after the end"
            )
        await asyncio.gather(*followers.values(), return_exceptions=True)
    note = target.gone_note(shown)
    if note:
        _note(note)
    return EXIT_OK if followers or note is None else EXIT_FAILED


async def _stream_pod(api: KubeApi, namespace: str, pod: str, label: str | None) -> None:
    """Follow one pod's log to its end; a broken stream is re-read past the lines seen."""
    import httpx

    from shoal.kube.api import ApiError, pods_path
    from shoal.kube.jobs import CONTAINER

    path = pods_path(namespace, pod) + "/log"
    seen = 0
    for attempt in range(MAX_STREAM_FAILURES):
        count = 0
        try:
            async for line in api.lines(path, follow="true", container=CONTAINER):
                count += 1
                if count > seen:
                    seen = count
                    _emit(label, line)
            return
        except ApiError as err:
            if err.status == 404:
                _note(f"{label or pod}: the pod was deleted")
                return
            transient = err.status in (0, 429) or err.status >= 500
            if not transient or attempt == MAX_STREAM_FAILURES - 1:
                _note(f"{label or pod}: cannot read the log of pod {pod}: {err}")
                return
        except httpx.HTTPError as err:
            if attempt == MAX_STREAM_FAILURES - 1:
                _note(f"{label or pod}: the log stream of pod {pod} broke: {err!r}")
                return
        await asyncio.sleep(min(0.2 * 2**attempt, 5.0))  # back off before re-reading


# -- stop ----------------------------------------------------------------------------------------


def stop(args: argparse.Namespace) -> int:
    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import workflows_path

        obj = await get_workflow(api, namespace, args.name)
        phase = _phase(obj)
        if phase in FINISHED:
            _out(f"workflow {args.name} already finished ({phase}); nothing to stop")
            return EXIT_OK if phase == "Stopped" or not args.wait else EXIT_FAILED
        if (obj.get("spec") or {}).get("stop"):
            _out(f"workflow {args.name} ({phase}): a stop was already requested")
        else:
            await api.merge_patch(workflows_path(namespace, args.name), {"spec": {"stop": True}})
            _out(
                f"workflow {args.name} ({phase}): stop requested; the operator deletes its pods "
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
                f"workflow {args.name} is still {_phase(err.last)} after {args.timeout:g}s "
                "(is the operator running?)"
            ) from None
        _out(verdict(final))
        return EXIT_OK if _phase(final) == "Stopped" else EXIT_FAILED

    return _run(args, run)


# -- retry ---------------------------------------------------------------------------------------


def nodes_to_retry(obj: dict[str, Any]) -> list[str]:
    """The nodes a retry runs again: Failed and Omitted ones, onFailure nodes that were
    Skipped (what failed may now succeed, so they are decided again), and any left
    Running. Succeeded nodes, and nodes Skipped by their condition, are kept."""
    nodes = (obj.get("status") or {}).get("nodes") or {}
    policies = {str(n["name"]): n.get("runPolicy") for n in _spec_nodes(obj)}
    chosen = []
    for name in node_order(obj):
        phase = (nodes.get(name) or {}).get("phase")
        if phase in ("Failed", "Omitted", "Running") or (
            phase == "Skipped" and policies.get(name) == "onFailure"
        ):
            chosen.append(name)
    return chosen


def retry_patch(obj: dict[str, Any], reset: list[str], now: datetime) -> dict[str, Any]:
    """The status merge patch that reopens the workflow: `reset` nodes back to Pending
    (every other field removed), phase Running, a fresh start time (so that
    activeDeadlineSeconds bounds the retried run), and `retries` counted up.
    `metadata.resourceVersion` makes it apply only to the state it was computed from."""
    status = obj.get("status") or {}
    nodes = status.get("nodes") or {}
    order = node_order(obj)
    done = sum(
        1
        for n in order
        if n not in reset and (nodes.get(n) or {}).get("phase") not in (None, "Pending", "Running")
    )
    patch_nodes = {
        name: {**{key: None for key in nodes.get(name) or {}}, "phase": "Pending"} for name in reset
    }
    return {
        "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
        "status": {
            "phase": "Running",
            "message": None,
            "finishedAt": None,
            "startedAt": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "progress": f"{done}/{len(order)}",
            "retries": int(status.get("retries") or 0) + 1,
            "nodes": patch_nodes,
        },
    }


def retry(args: argparse.Namespace) -> int:
    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import ApiError, workflows_path

        name = args.name
        started = time.monotonic()
        deadline = None if args.timeout is None else started + args.timeout
        obj = await get_workflow(api, namespace, name)
        phase = _phase(obj)
        if phase not in RETRYABLE:
            raise CliError(
                f"workflow {name} is {phase}: only a Failed or Stopped workflow can be retried"
            )
        reset = nodes_to_retry(obj)
        if not reset:
            raise CliError(f"workflow {name} is {phase} but has no failed node to run again")
        path = workflows_path(namespace, name)
        if (obj.get("spec") or {}).get("stop"):
            await api.merge_patch(path, {"spec": {"stop": False}})
        removal = started + REMOVAL_SECONDS if deadline is None else deadline
        await _remove_attempts(api, namespace, obj, reset, removal)
        for _ in range(5):
            obj = await get_workflow(api, namespace, name)
            if _phase(obj) not in RETRYABLE:
                raise CliError(f"workflow {name} became {_phase(obj)} meanwhile; not retried")
            try:
                await api.merge_patch(path + "/status", retry_patch(obj, reset, datetime.now(UTC)))
                break
            except ApiError as err:
                if err.status != 409:
                    raise
        else:
            raise CliError(f"workflow {name} kept changing; not retried (try again)")
        kept = [n for n in node_order(obj) if n not in reset]
        count = int((obj.get("status") or {}).get("retries") or 0) + 1
        _out(
            f"workflow {name}: retry {count}, running again: {', '.join(reset)}"
            + (f"; kept: {', '.join(kept)}" if kept else "")
        )
        if not args.watch:
            return EXIT_OK
        remaining = None if deadline is None else max(1.0, deadline - time.monotonic())
        return await _watch_to_end(api, namespace, name, remaining)

    return _run(args, run)


async def _remove_attempts(
    api: KubeApi, namespace: str, obj: dict[str, Any], nodes: list[str], deadline: float
) -> None:
    """Delete the Jobs (and any stray pods) of `nodes`, and wait until they are gone.

    The retried attempts reuse the deterministic Job names of the first ones, so the old
    Jobs must be gone first; Foreground deletion removes a Job only after its pods.
    """
    from shoal.kube.api import jobs_path, pods_path
    from shoal.kube.naming import LABEL_NODE, LABEL_WORKFLOW_UID

    selector = f"{LABEL_WORKFLOW_UID}={obj['metadata']['uid']},{LABEL_NODE} in ({','.join(nodes)})"
    for path_of in (jobs_path, pods_path):
        listing = await api.get(path_of(namespace), labelSelector=selector)
        for item in listing.get("items") or []:
            await api.delete(path_of(namespace, item["metadata"]["name"]), propagation="Foreground")
    for path_of, what in ((jobs_path, "Jobs"), (pods_path, "pods")):
        left: set[str] = set()
        synced = False
        events = watch_events(api, path_of(namespace), deadline, labelSelector=selector)
        try:
            async for kind, item in events:
                if kind == "RESET":
                    left.clear()
                    synced = False
                elif kind == "SYNCED":
                    synced = True
                elif kind == "DELETED":
                    left.discard(item["metadata"]["name"])
                else:
                    left.add(item["metadata"]["name"])
                if synced and not left:
                    break
            else:
                raise CliError(
                    f"the old {what} of {', '.join(nodes)} were still there at the deadline "
                    f"({', '.join(sorted(left))}); nothing was retried: try again, or give it "
                    "a longer --timeout"
                )
        finally:
            await events.aclose()
