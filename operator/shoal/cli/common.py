"""What every `shoal` command shares: exit codes, arguments, output, the cluster session.

The cluster commands talk to the API server through `shoal.kube.api.KubeApi` (httpx,
asyncio), imported inside the functions only, as are the manifest models: importing
this module costs no more than the standard library, so `shoal --help` and the local
commands never load httpx, kopf or the kubernetes package. Every wait has a deadline or
ends with the workflow, and an expected failure (not found, unreachable, refused) is one
line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Awaitable, Callable

from shoal.api.enums import FINISHED_PHASES
from shoal.core.text import clip as clip_text

# `typing`, `json`, `datetime` and `pathlib` are imported where used: `shoal validate`
# imports this module, and they would add a tenth to its start-up (issue 17).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime, timedelta
    from typing import Any

    from shoal.core.validation import InvalidWorkflow
    from shoal.kube.api import KubeApi
    from shoal.manifests import Manifest

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_OK",
    "FINISHED",
    "STDIN",
    "Body",
    "CliError",
    "Transitions",
    "WatchTimeout",
    "ago",
    "clip",
    "connection_args",
    "database_args",
    "default_namespace",
    "duration",
    "duration_seconds",
    "fail",
    "follow_workflow",
    "get_workflow",
    "items_summary",
    "load_manifests",
    "node_order",
    "not_found",
    "note",
    "out",
    "param_arg",
    "parameter_file_arg",
    "parse_params",
    "parse_time",
    "phase",
    "pick_manifest",
    "read_parameter_file",
    "report_invalid",
    "resolve_database",
    "run_against_cluster",
    "short_json",
    "source_name",
    "span",
    "spec_nodes",
    "table",
    "timeout_arg",
    "verdict",
    "watch_to_end",
]

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
"""0 succeeded (or valid), 1 failed or stopped, 2 the input is invalid and nothing ran."""
FINISHED = FINISHED_PHASES
IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class CliError(Exception):
    """An expected failure: one line for the user, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def node_order(body: dict[str, Any]) -> list[str]:
    """`core.retry.node_order`, imported when called: that module loads the status models
    (pydantic), which `shoal validate` and `--help` must not pay for."""
    from shoal.core.retry import node_order as order

    return order(body)


# -- arguments -------------------------------------------------------------------------------


def connection_args(p: argparse.ArgumentParser) -> None:
    """`-n/--namespace`, `--kubeconfig` and `--context`, as every cluster command reads them."""
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
    p.add_argument(
        "--context",
        metavar="NAME",
        help="the kubeconfig context to use (default: its current-context)",
    )


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """`90s`, `5m`, `2h`, `1d` (or `1h30m`) in seconds; an argparse type."""
    import re

    parts = re.findall(r"(\d+)([smhd])", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: use a duration such as 90s, 5m, 2h or 1h30m")
    seconds = sum(int(n) * DURATION_UNITS[u] for n, u in parts)
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration of at least 1s")
    return seconds


def timeout_arg(p: argparse.ArgumentParser, default: float | None, what: str) -> None:
    """`--timeout SECONDS`, saying what is given up on."""
    p.add_argument(
        "--timeout",
        type=float,
        default=default,
        metavar="SECONDS",
        help=f"give up {what} after this long (exit 1)"
        + ("" if default is None else f"; default {default:g}"),
    )


def database_args(p: argparse.ArgumentParser, what: str) -> None:
    """`--database-url` and `--database-url-file`, read as `shoal history` reads them."""
    p.add_argument("--database-url", help=f"PostgreSQL archive, {what} (SHOAL_DATABASE_URL)")
    p.add_argument(
        "--database-url-file",
        default=os.environ.get("SHOAL_DATABASE_URL_FILE"),
        help="a file holding the archive DSN, e.g. a mounted Secret (SHOAL_DATABASE_URL_FILE)",
    )


def resolve_database(args: argparse.Namespace) -> str | None:
    """The archive DSN from the flags or the environment (None: no archive)."""
    from shoal.archive.db import resolve_dsn

    try:
        return resolve_dsn(args.database_url, args.database_url_file)
    except OSError as err:
        raise CliError(
            f"cannot read --database-url-file {args.database_url_file}: {err.strerror}",
            EXIT_INVALID,
        ) from None


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value that parses as JSON is taken as JSON, otherwise as text."""
    if not pairs:
        return {}  # without loading the JSON decoder: most validations pass no -p
    from shoal.core import jsonbounds
    from shoal.core.validation import InvalidWorkflow, Problem

    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidWorkflow([Problem(f"expected KEY=VALUE, got {pair!r}", field="-p")])
        try:
            params[key] = jsonbounds.loads(raw)  # deep JSON is cut, then refused by validation
        except ValueError:
            params[key] = raw
    return params


STDIN = "-"
"""A manifest argument of `-` is read from standard input."""


def source_name(path: str) -> str:
    """How errors name the manifest: its path, or `<stdin>`."""
    return "<stdin>" if path == STDIN else path


def load_manifests(path: str) -> list[Manifest]:
    """Every document of the file at `path`, or of stdin for `-`."""
    from shoal.manifests import load_file, load_text

    if path == STDIN:
        return load_text(sys.stdin.read(), source_name(path))
    return load_file(path)


def param_arg(p: argparse.ArgumentParser, verb: str = "set") -> None:
    """`-p/--param KEY=VALUE`, repeatable (read by `parse_params`)."""
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"{verb} a parameter; VALUE is read as JSON when it parses (3, true, [1,2]), "
        "else as text",
    )


def parameter_file_arg(p: argparse.ArgumentParser) -> None:
    """`--parameter-file FILE`: parameters from a YAML or JSON mapping; `-p` wins."""
    p.add_argument(
        "--parameter-file",
        metavar="FILE",
        help="read parameters from a YAML or JSON mapping; -p KEY=VALUE overrides them",
    )


def read_parameter_file(path: str | None) -> dict[str, Any]:
    """The mapping in `path` ({} without one); InvalidWorkflow when it is not a mapping."""
    from shoal.core.validation import InvalidWorkflow, Problem
    from shoal.yamlread import yaml_depth_problem  # not manifests: that loads the models

    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidWorkflow([Problem(f"cannot read: {err}")], path) from None
    import yaml

    try:
        if (too_deep := yaml_depth_problem(text)) is not None:
            raise InvalidWorkflow([Problem(too_deep)], path)
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InvalidWorkflow([Problem(f"not YAML or JSON: {err}")], path) from None
    if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
        raise InvalidWorkflow([Problem("parameters must be a mapping of names to values")], path)
    return loaded


def pick_manifest(manifests: list[Manifest], name: str | None, source: str) -> Manifest:
    """The document named `name`, or the only one; InvalidWorkflow when that is unclear."""
    from shoal.core.validation import InvalidWorkflow, Problem

    if name is not None:
        found = [m for m in manifests if m.resource.metadata.name == name]
        if not found:
            names = ", ".join(str(m.resource.metadata.name) for m in manifests)
            raise InvalidWorkflow([Problem(f"no document named {name!r} (found: {names})")], source)
        return found[0]
    if len(manifests) > 1:
        names = ", ".join(str(m.resource.metadata.name) for m in manifests)
        raise InvalidWorkflow(
            [Problem(f"{len(manifests)} documents ({names}); choose one with --name")], source
        )
    return manifests[0]


def report_warnings(manifest: Manifest) -> None:
    """Print on stderr each scalar kubectl would read differently from YAML 1.2."""
    for warning in manifest.warnings:
        print(warning, file=sys.stderr)


def report_invalid(err: InvalidWorkflow) -> int:
    """Print every problem on stderr; the exit code of invalid input."""
    for problem in err.problems:
        print(f"error: {problem.describe(err.source)}", file=sys.stderr)
    return EXIT_INVALID


# -- connecting and error handling -----------------------------------------------------------


def default_namespace(kubeconfig: str | None, context: str | None = None) -> str:
    """The namespace of the pod we run in, else the kubeconfig context's, else 'default'."""
    if kubeconfig is None and context is None and os.path.exists(IN_CLUSTER_NAMESPACE):
        with open(IN_CLUSTER_NAMESPACE, encoding="utf-8") as file:
            return file.read().strip() or "default"
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except Exception:  # no usable kubeconfig: load_credentials reports it
        return "default"
    if context is not None:
        active = next((c for c in contexts or [] if c.get("name") == context), None)
    namespace = ((active or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else "default"


Body = Callable[["KubeApi", str], Awaitable[int]]


def run_against_cluster(args: argparse.Namespace, body: Body) -> int:
    """Connect, run `body(api, namespace)` on an event loop, and turn failures into lines."""
    import asyncio

    try:
        import httpx

        from shoal.kube.api import ApiError, KubeApi, load_credentials
    except ImportError as err:
        return fail(
            f"the cluster commands need the operator extra ({err.name} is missing): "
            "pip install 'shoal[operator]'"
        )
    missing = [
        p
        for p in (args.kubeconfig or "").split(os.pathsep)
        if p and not os.path.exists(os.path.expanduser(p))
    ]
    if missing and len(missing) == len(args.kubeconfig.split(os.pathsep)):
        return fail(f"kubeconfig {args.kubeconfig} does not exist")
    context = getattr(args, "context", None)
    try:
        creds = load_credentials(args.kubeconfig, context)
    except Exception as err:
        where = args.kubeconfig or "the default kubeconfig"
        if context is not None:
            where += f" (context {context!r})"
        return fail(f"cannot load Kubernetes credentials from {where}: {err}")
    namespace = args.namespace or default_namespace(args.kubeconfig, context)

    async def main() -> int:
        api = KubeApi(creds)
        try:
            return await body(api, namespace)
        finally:
            await api.close()

    try:
        return asyncio.run(main())
    except CliError as err:
        return fail(str(err), err.code)
    except ApiError as err:
        if err.status == 0:
            cause = err.__cause__
            why = f"{type(cause).__name__}: {cause}" if cause is not None else str(err)
            return fail(f"cannot reach the Kubernetes API server at {creds.host} ({why})")
        return fail(f"the API server refused: {err}")
    except httpx.HTTPError as err:
        return fail(f"lost the connection to the API server at {creds.host}: {err!r}")
    except BrokenPipeError:  # stdout's reader went away: main ends quietly
        raise
    except OSError as err:  # the archive database (the API server's errors are above)
        return fail(f"cannot reach the archive database: {type(err).__name__}: {err}")
    except Exception as err:
        if type(err).__module__.split(".")[0] != "asyncpg":
            raise
        return fail(f"the archive database refused: {type(err).__name__}: {err}")
    except KeyboardInterrupt:
        return 130


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """`error: message` on stderr; returns `code` for the caller to exit with."""
    print(f"error: {message}", file=sys.stderr)
    return code


def out(text: str = "") -> None:
    """One line of the command's result on stdout, flushed (a pipe sees it at once)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """One line about the result (not the result itself) on stderr."""
    print(text, file=sys.stderr, flush=True)


async def get_workflow(api: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    """The Workflow, or a CliError that names what is missing."""
    from shoal.kube.api import ApiError, workflows_path

    try:
        return await api.get(workflows_path(namespace, name))
    except ApiError as err:
        if err.status == 404:
            raise CliError(not_found(err, namespace, name)) from None
        raise


def not_found(err: Exception, namespace: str, name: str | None = None) -> str:
    """What a 404 means: no CRD, no namespace, or no such workflow."""
    if "could not find the requested resource" in str(err):
        return (
            "this cluster has no Workflow resource (shoal.dev/v1alpha1): "
            "install Shoal's CRDs first (kubectl apply -f crds/)"
        )
    if name is None:
        return f"namespace {namespace!r} not found"
    return f"workflow {name!r} not found in namespace {namespace!r}"


# -- following a workflow ------------------------------------------------------------------------


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
    from shoal.kube.listwatch import watch_events

    finished = done or (lambda obj: phase(obj) in FINISHED)
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


async def watch_to_end(api: KubeApi, namespace: str, name: str, seconds: float | None) -> int:
    """Print each change until the workflow finishes, then its verdict; exit 0 if it succeeded."""
    try:
        final = await follow_workflow(api, namespace, name, Transitions(), seconds=seconds)
    except WatchTimeout as err:
        raise CliError(
            f"gave up after {seconds or 0:g}s: workflow {name!r} is still {phase(err.last)} "
            f"(it keeps running; see `shoal get {name} -n {namespace}`)"
        ) from None
    out(verdict(final))
    return EXIT_OK if phase(final) == "Succeeded" else EXIT_FAILED


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
            node_phase = str(entry.get("phase") or "Pending")
            attempts = int(entry.get("attempts") or 0)
            previous = self.seen.get(name)
            self.seen[name] = (node_phase, attempts)
            if previous == (node_phase, attempts) or (previous is None and node_phase == "Pending"):
                continue
            if previous is not None and previous[0] == node_phase and node_phase != "Running":
                continue
            detail = self._detail(entry, attempts)
            out(f"{name.ljust(width)}  {node_phase.ljust(9)}  {detail}".rstrip())
        now = phase(obj)
        if now != self.phase:
            self.phase = now
            if now not in FINISHED and now != "Pending":
                out(f"workflow {obj['metadata']['name']}: {now}")

    @staticmethod
    def _detail(entry: dict[str, Any], attempts: int) -> str:
        parts = []
        if entry.get("phase") == "Running" and attempts > 1:
            parts.append(f"attempt {attempts}")
        if isinstance(entry.get("items"), dict):
            parts.append(f"items {items_summary(entry)}")
        if entry.get("exitCode") not in (None, 0):
            parts.append(f"exit {entry['exitCode']}")
        if entry.get("message"):
            parts.append(clip(str(entry["message"]), 200))
        if entry.get("outputs"):
            parts.append(f"outputs {short_json(entry['outputs'])}")
        elif entry.get("outputsOmitted"):
            parts.append(str(entry["outputsOmitted"]))
        return "  ".join(parts)


# -- reading and formatting a workflow -------------------------------------------------------


def phase(obj: dict[str, Any]) -> str:
    """The workflow's phase; Pending before the operator wrote any status."""
    return str((obj.get("status") or {}).get("phase") or "Pending")


def spec_nodes(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's node entries that have a name (a run from a template: its resolved ones)."""
    from shoal.core.resolved_spec import run_spec

    nodes = run_spec(obj).get("nodes") or []
    return [n for n in nodes if isinstance(n, dict) and n.get("name")]


def short_json(value: Any, limit: int = 200) -> str:
    """Compact JSON, cut to `limit` characters."""
    import json

    text = json.dumps(value, separators=(", ", ": "), default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(text: str, limit: int) -> str:
    """The first line, marked when more follows, cut to `limit` characters."""
    first = text.splitlines()[0] if text else ""
    if len(first) < len(text):
        first += " …"
    return clip_text(first, limit)


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time from a status, or None when absent or unreadable."""
    from shoal.core.timestamps import parse_rfc3339

    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def ago(value: str | None, now: datetime | None = None) -> str:
    """How long ago `value` was, as `span` writes it; "-" when unknown."""
    when = parse_time(value)
    if when is None:
        return "-"
    from datetime import UTC, datetime

    return span((now or datetime.now(UTC)) - when)


def span(delta: timedelta) -> str:
    """A coarse age: seconds, minutes, hours or days."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def duration(status: dict[str, Any]) -> str | None:
    """How long the run took (`3.1s`), when it has both a start and an end."""
    start, end = parse_time(status.get("startedAt")), parse_time(status.get("finishedAt"))
    if start is None or end is None:
        return None
    return f"{(end - start).total_seconds():.1f}s"


def items_summary(entry: dict[str, Any]) -> str:
    """A fan-out node's `done/total`, with the running and failed counts; "-" otherwise."""
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
    text = f"workflow {name}: {phase(obj)}"
    details = [f"{status['progress']} nodes"] if status.get("progress") else []
    took = duration(status)
    if took and phase(obj) in FINISHED:
        details.append(f"in {took}")
    if details:
        text += f" ({', '.join(details)})"
    if status.get("message"):
        text += f": {status['message']}"
    return text
