"""`shoal run`: a workflow on this machine, one child process per node or item."""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from shoal.api.enums import WorkflowPhase
from shoal.cli.common import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    STDIN,
    load_manifests,
    param_arg,
    parameter_file_arg,
    parse_params,
    pick_manifest,
    read_parameter_file,
    report_invalid,
    report_warnings,
    source_name,
)
from shoal.cli.run_ui import UiError, add_ui_args, bind_dashboard, dashboard_during
from shoal.cli.validate_command import check_jobs
from shoal.core.compiled import CompiledWorkflow
from shoal.core.state import RunState
from shoal.core.timestamps import format_rfc3339
from shoal.core.validation import InvalidWorkflow
from shoal.fast_run import compile_for_run
from shoal.import_path import import_path  # where --import looks, shared with validate
from shoal.local.executor import LocalExecutor
from shoal.local.reporting import LiveReporter, PlainReporter, Reporter
from shoal.local.run_ids import random_uid, temporary_workdir
from shoal_worker.offload import OFFLOAD_BYTES
from shoal_worker.store_settings import ENV_URL, StoreSettings

if TYPE_CHECKING:
    from shoal.server.local_serve import LocalDashboard
    from shoal_worker.artifacts import ArtifactStore

__all__ = [
    "configure",
    "for_local_run",
    "import_path",
    "local_store_settings",
    "run",
    "status_document",
]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal run`'s arguments and handler."""
    p.description = "Run a Workflow (or a CronWorkflow's workflowSpec, once) on this machine."
    p.add_argument("file", help="manifest (YAML); - reads it from stdin")
    param_arg(p)
    parameter_file_arg(p)
    p.add_argument(
        "--name", help="which document to run when the file holds several (metadata.name)"
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="module that registers jobs (@job), found beside the manifest, in the "
        "current directory or on $PYTHONPATH",
    )
    from shoal.template_files import TEMPLATES_HELP

    p.add_argument("--templates", action="append", default=[], metavar="PATH", help=TEMPLATES_HELP)
    p.add_argument("--workdir", help="where attempts keep their logs (default: a temp dir)")
    p.add_argument(
        "--artifacts",
        metavar="URL",
        help="artifact store: s3://bucket/prefix (S3 options from SHOAL_S3_* and AWS_* "
        "variables) or a folder (default: $SHOAL_ARTIFACTS, else WORKDIR/artifacts)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="hide job log lines")
    p.add_argument(
        "--plain", action="store_true", help="plain lines even on a terminal (no live view)"
    )
    p.add_argument(
        "-o",
        "--output",
        choices=["text", "json"],
        default="text",
        help="json: print the final status as JSON on stdout (progress goes to stderr)",
    )
    add_ui_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate, then run the workflow to its end with live progress."""
    try:
        params = {**read_parameter_file(args.parameter_file), **parse_params(args.param)}
        fast = compile_for_run(args, params)  # no pydantic when it vouches (fast_run.py)
        wf = fast if fast is not None else _compile_with_models(args, params)
    except InvalidWorkflow as err:
        return report_invalid(err)

    status_stream = sys.stderr if args.output == "json" else sys.stdout
    reporter: Reporter
    if status_stream.isatty() and not args.plain:
        from rich.console import Console  # the live view only

        reporter = LiveReporter(Console(file=status_stream), show_logs=not args.quiet)
    else:
        reporter = PlainReporter(status_stream, show_logs=not args.quiet)

    manifest_dir = Path.cwd() if args.file == STDIN else Path(args.file).resolve().parent
    workdir = Path(args.workdir) if args.workdir else temporary_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        settings = local_store_settings(args.artifacts, workdir, os.environ)
    except ValueError as err:
        print(f"error: --artifacts: {err}", file=sys.stderr)
        return EXIT_INVALID
    wf = for_local_run(wf, settings)
    if any(node.spec.suspend is not None for node in wf.nodes.values()):
        print(
            f"approval gates: shoal resume --local {workdir} [--node N]",
            file=status_stream,
            flush=True,
        )
    try:
        board = bind_dashboard(args)
    except UiError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID
    executor = _executor(wf, workdir, manifest_dir, reporter, args.imports, settings)
    # What start-up built (modules, models, the compiled workflow) lives until this process
    # exits: full collections during the run need not walk it (~16 ms per 1,000 items).
    gc.freeze()
    if board is None:
        state = executor.run_blocking()  # no asyncio (local/reactor.py)
    else:
        import asyncio

        state = asyncio.run(_run_with_dashboard(executor, board, args.ui_keep, status_stream))
    print(f"logs: {workdir}", file=status_stream)
    print(f"artifacts: {settings.url}", file=status_stream)
    if args.output == "json":
        json.dump(status_document(wf, state), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    return EXIT_OK if state.phase is WorkflowPhase.SUCCEEDED else EXIT_FAILED


def _compile_with_models(args: argparse.Namespace, params: dict[str, Any]) -> CompiledWorkflow:
    """The file read into models and compiled: every error worded by them."""
    from shoal.api.cron import CronWorkflow
    from shoal.manifests import compile_manifest
    from shoal.template_files import is_template, load_templates, not_runnable

    manifests = load_manifests(args.file)
    templates = load_templates(args.templates, manifests)
    runnable = [m for m in manifests if args.name or not is_template(m)] or manifests
    manifest = pick_manifest(runnable, args.name, source_name(args.file))
    report_warnings(manifest)
    if isinstance(manifest.resource, CronWorkflow):
        params.setdefault("scheduledTime", format_rfc3339(time.time()))
    elif is_template(manifest):
        raise not_runnable(manifest)
    wf = compile_manifest(manifest, params, templates)
    check_jobs(manifest, wf, args.imports, args.file)
    return wf


def local_store_settings(flag: str | None, workdir: Path, env: Mapping[str, str]) -> StoreSettings:
    """The store of a local run: the flag, else $SHOAL_ARTIFACTS, else WORKDIR/artifacts."""
    if flag:
        url = flag if "://" in flag else Path(flag).resolve().as_uri()
        found = StoreSettings.from_env({**env, ENV_URL: url})
    else:
        found = StoreSettings.from_env(env)
    return found or StoreSettings((workdir / "artifacts").resolve().as_uri())


def for_local_run(wf: CompiledWorkflow, settings: StoreSettings) -> CompiledWorkflow:
    """A fresh uid (artifact keys of two runs never collide) and the offload threshold."""
    spec_artifacts = wf.spec.artifacts
    threshold = spec_artifacts.offload_bytes if spec_artifacts is not None else OFFLOAD_BYTES
    meta = wf.meta.replace(uid=wf.meta.uid or random_uid())
    return wf.replace(meta=meta, offload_bytes=threshold)


def _executor(
    wf: CompiledWorkflow,
    workdir: Path,
    manifest_dir: Path,
    reporter: Reporter,
    imports: list[str],
    settings: StoreSettings,
) -> LocalExecutor:
    opened: list[ArtifactStore] = []

    def store() -> ArtifactStore:
        if not opened:
            from shoal_worker.artifacts import open_store  # a run without artifacts: never

            opened.append(open_store(settings))
        return opened[0]

    return LocalExecutor(
        wf,
        workdir=workdir,
        cwd=manifest_dir,
        reporter=reporter,
        extra_pythonpath=import_path(manifest_dir, Path.cwd(), os.environ.get("PYTHONPATH")),
        imports=imports,
        store=store,
        store_env={**settings.to_env(), "SHOAL_OFFLOAD_BYTES": str(wf.offload_bytes)},
    )


async def _run_with_dashboard(
    executor: LocalExecutor, board: LocalDashboard, keep: bool, out: TextIO
) -> RunState:
    """The run on asyncio, beside the dashboard's server (`--ui`)."""
    import asyncio

    loop = asyncio.get_running_loop()
    for signum, why in ((signal.SIGINT, "interrupted (Ctrl-C)"), (signal.SIGTERM, "terminated")):
        loop.add_signal_handler(signum, executor.request_stop, why)
    async with dashboard_during(board, executor, keep, out):
        return await executor.run()


def status_document(wf: CompiledWorkflow, state: RunState) -> dict[str, Any]:
    """The run's outcome in the shape of a Workflow's status (what `-o json` prints)."""
    from shoal.core.status import render_status, run_summary

    duration = None
    if state.started_at and state.finished_at:
        duration = round(state.finished_at - state.started_at, 3)
    return run_summary(wf.meta.name, render_status(wf, state, limits=False), duration)
