"""`shoal submit`: validate a Workflow manifest exactly as `shoal run` does, then create it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
from typing import TYPE_CHECKING, Any

from shoal.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    CliError,
    connection_args,
    load_manifests,
    not_found,
    out,
    param_arg,
    parameter_file_arg,
    parse_params,
    pick_manifest,
    read_parameter_file,
    report_invalid,
    report_warnings,
    run_against_cluster,
    source_name,
    timeout_arg,
    watch_to_end,
)

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["configure", "show_object", "submission", "submit"]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal submit`'s arguments and handler."""
    p.description = (
        "Validate a Workflow manifest exactly as `shoal run` does (exit 2 and "
        "nothing is created when it is invalid), then create it. The -p parameters are "
        "merged into spec.parameters, so the Workflow records what it ran with."
    )
    p.add_argument("file", help="manifest (YAML); - reads it from stdin")
    param_arg(p)
    parameter_file_arg(p)
    p.add_argument("--name", help="which document to submit when the file holds several")
    p.add_argument(
        "-w", "--watch", action="store_true", help="follow the workflow until it finishes"
    )
    p.add_argument(
        "--log",
        action="store_true",
        help="stream every node's log as it comes while watching (implies --watch)",
    )
    p.add_argument(
        "-o",
        "--output",
        choices=["text", "name", "yaml", "json"],
        default="text",
        help="name: print the name only; yaml, json: the object created (or, with "
        "--dry-run, the one that would be)",
    )
    p.add_argument(
        "--dry-run",
        nargs="?",
        const="client",
        choices=["client", "server"],
        help="create nothing: validate and print the object (client, the default, needs no "
        "cluster); server: the API server checks it too (admission, schema)",
    )
    timeout_arg(p, None, "watching")
    connection_args(p)
    p.set_defaults(handler=submit)


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


def show_object(obj: dict[str, Any], output: str) -> None:
    """The object as YAML or JSON (`-o name`: its name, or generateName's prefix)."""
    if output == "name":
        meta = obj.get("metadata") or {}
        out(str(meta.get("name") or meta.get("generateName") or ""))
    elif output == "json":
        out(json.dumps(obj, indent=2, sort_keys=True, default=str))
    else:
        import yaml

        out(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True).rstrip("\n"))


def _checked_body(args: argparse.Namespace) -> dict[str, Any]:
    """The Workflow to create, checked: InvalidWorkflow before any connection."""
    from shoal.api.cron import CronWorkflow
    from shoal.core.templates import TemplatesNeeded
    from shoal.core.validation import InvalidWorkflow, Problem
    from shoal.manifests import compile_manifest
    from shoal.template_files import is_template, not_runnable

    from_file = read_parameter_file(getattr(args, "parameter_file", None))
    params = {**from_file, **parse_params(args.param)}
    source = source_name(args.file)
    manifest = pick_manifest(load_manifests(args.file), args.name, source)
    report_warnings(manifest)
    if isinstance(manifest.resource, CronWorkflow):
        raise InvalidWorkflow(
            [
                Problem(
                    "shoal submit creates Workflows; a CronWorkflow is applied as is "
                    "(kubectl apply -f) and stamps out Workflows on its schedule",
                    field="kind",
                )
            ],
            source,
        )
    if is_template(manifest):
        raise not_runnable(manifest)
    with contextlib.suppress(TemplatesNeeded):  # checked with the cluster's: check_templates
        compile_manifest(manifest, params)
    meta = manifest.resource.metadata
    if not meta.name and not meta.generate_name:
        raise InvalidWorkflow(
            [Problem("set metadata.name or metadata.generateName", field="metadata")],
            source,
        )
    # The document as kubectl would send it (y/n/on/off as booleans, keys as strings).
    raw = manifest.document.raw if manifest.document is not None else None
    if not isinstance(raw, dict):  # load_file always keeps the document it parsed
        raise InvalidWorkflow([Problem("a manifest must be a mapping")], source)
    return submission(raw, params)


async def check_templates(api: KubeApi, namespace: str, body: dict[str, Any], source: str) -> None:
    """A Workflow naming templates, compiled with them as the cluster has them now: a
    missing one fails the submission with its name (exit 2), before anything is created."""
    from shoal.core.templates import uses_templates
    from shoal.core.validation import InvalidWorkflow
    from shoal.kube.templates import fetch_templates, spec_of
    from shoal.manifests import Manifest, compile_manifest, parse_document

    spec = spec_of(body)
    if spec is None or not uses_templates(spec):
        return
    templates = await fetch_templates(api, namespace, spec)
    try:
        compile_manifest(Manifest(parse_document(body, source), source), None, templates)
    except InvalidWorkflow as err:
        raise CliError(str(err), EXIT_INVALID) from None


async def _watch_with_logs(
    api: KubeApi, namespace: str, created: dict[str, Any], seconds: float | None
) -> int:
    """`--log`: the workflow's transitions and its nodes' log lines, as they come."""
    from shoal.cli.logs_command import LOG_DRAIN_SECONDS, follow_all_logs

    logs = asyncio.create_task(follow_all_logs(api, namespace, created))
    try:
        code = await watch_to_end(api, namespace, created["metadata"]["name"], seconds)
        # The streams end with their pods; bounded, in case one does not.
        await asyncio.wait({logs}, timeout=LOG_DRAIN_SECONDS + 5)
        return code
    finally:
        logs.cancel()
        await asyncio.gather(logs, return_exceptions=True)


def submit(args: argparse.Namespace) -> int:
    from shoal.core.validation import InvalidWorkflow

    try:
        body = _checked_body(args)
    except InvalidWorkflow as err:
        return report_invalid(err)
    if args.dry_run == "client":
        show_object(body, "yaml" if args.output == "text" else args.output)
        return EXIT_OK

    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import ApiError, workflows_path

        declared = body["metadata"].get("namespace")
        if declared and args.namespace and declared != args.namespace:
            raise CliError(
                f"{source_name(args.file)}: the manifest's namespace {declared!r} differs from "
                f"--namespace {args.namespace!r}",
                EXIT_INVALID,
            )
        ns = declared or namespace
        body["metadata"]["namespace"] = ns
        await check_templates(api, ns, body, source_name(args.file))
        wanted = body["metadata"].get("name") or body["metadata"].get("generateName")
        query = {"dryRun": "All"} if args.dry_run == "server" else None
        try:
            created = await api.request("POST", workflows_path(ns), body=body, params=query)
        except ApiError as err:
            if err.status == 409:
                raise CliError(
                    f"workflow {wanted!r} already exists in namespace {ns!r} (delete it, or "
                    "use metadata.generateName for a new name per submission)"
                ) from None
            if err.status == 404:
                raise CliError(not_found(err, ns)) from None
            if err.status in (400, 422):
                raise CliError(
                    f"{source_name(args.file)}: the API server rejected the workflow: {err}",
                    EXIT_INVALID,
                ) from None
            raise
        name = created["metadata"]["name"]
        if args.dry_run == "server":
            show_object(created, "yaml" if args.output == "text" else args.output)
            return EXIT_OK
        if args.output == "name":
            out(name)
        elif args.output in ("yaml", "json"):
            show_object(created, args.output)
        else:
            out(f"workflow {name} created in namespace {ns}")
        if not (args.watch or args.log):
            return EXIT_OK
        if not args.log:
            return await watch_to_end(api, ns, name, args.timeout)
        return await _watch_with_logs(api, ns, created, args.timeout)

    return run_against_cluster(args, run)
