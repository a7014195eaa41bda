"""`shoal template list|get|create|lint`: WorkflowTemplates and ClusterWorkflowTemplates.

`lint` needs no cluster: it checks template files as `shoal validate` checks workflows
(a template's `parameters` defaults stand in for a run's values), references resolved
from the files given and `--templates`. `create` lints first, then creates each template
(references it makes are resolved against the cluster's templates). docs/templates.md.
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
    ago,
    connection_args,
    fail,
    load_manifests,
    note,
    out,
    report_invalid,
    run_against_cluster,
    source_name,
    table,
)
from shoal.core.validation import InvalidWorkflow, Problem

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi
    from shoal.manifests import Manifest

__all__ = ["ACTIONS", "configure", "template", "template_rows", "templates_path"]

ACTIONS = ("list", "get", "create", "lint")


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal template`'s arguments and handler."""
    from shoal.template_files import TEMPLATES_HELP

    p.description = (
        "list: the WorkflowTemplates of a namespace (--cluster: the ClusterWorkflowTemplates). "
        "get NAME: one of them. create FILE...: lint, then create the templates in the files. "
        "lint FILE...: check template files without a cluster. Exit 2 on invalid input."
    )
    p.add_argument("action", choices=ACTIONS, help="list, get, create or lint")
    p.add_argument("args", nargs="*", metavar="NAME|FILE", help="get: NAME; create, lint: FILEs")
    p.add_argument("--cluster", action="store_true", help="ClusterWorkflowTemplates")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="list: every namespace")
    p.add_argument("-o", "--output", choices=["text", "yaml", "json"], default="text")
    p.add_argument("--templates", action="append", default=[], metavar="PATH", help=TEMPLATES_HELP)
    connection_args(p)
    p.set_defaults(handler=template)


def templates_path(namespace: str | None, name: str | None = None, *, cluster: bool) -> str:
    """The (Cluster)WorkflowTemplate collection (of every namespace with None), or one."""
    base = "/apis/shoal.dev/v1alpha1"
    if cluster:
        base = f"{base}/clusterworkflowtemplates"
    elif namespace:
        base = f"{base}/namespaces/{namespace}/workflowtemplates"
    else:
        base = f"{base}/workflowtemplates"
    return f"{base}/{name}" if name else base


def template_rows(items: list[dict[str, Any]], now: datetime, *, namespaces: bool) -> list[str]:
    """The table: name, node count, parameters with their defaults, age."""
    rows = []
    for obj in sorted(
        items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
    ):
        meta, spec = obj["metadata"], obj.get("spec") or {}
        params = ", ".join(
            f"{k}={json.dumps(v)}" for k, v in (spec.get("parameters") or {}).items()
        )
        row = [
            meta["name"],
            str(len(spec.get("nodes") or [])),
            params[:80] or "-",
            ago(meta.get("creationTimestamp"), now),
        ]
        rows.append([meta.get("namespace", ""), *row] if namespaces else row)
    headers = ["NAME", "NODES", "PARAMETERS", "AGE"]
    return table(["NAMESPACE", *headers] if namespaces else headers, rows)


def template(args: argparse.Namespace) -> int:
    """Check the arguments (exit 2), then list, get, create or lint."""
    if args.action == "list" and args.args:
        return fail("template list takes no NAME", EXIT_INVALID)
    if args.action == "get" and len(args.args) != 1:
        return fail("template get needs one template NAME", EXIT_INVALID)
    if args.action in ("create", "lint") and not args.args:
        return fail(f"template {args.action} needs template FILEs", EXIT_INVALID)
    if args.action == "lint":
        return lint(args.args, args.templates)

    async def run(api: KubeApi, namespace: str) -> int:
        if args.action == "list":
            scope = None if args.all_namespaces else namespace
            return await _list(api, scope, args)
        if args.action == "get":
            return await _get(api, namespace, args.args[0], args)
        return await _create(api, namespace, args)

    return run_against_cluster(args, run)


def _templates_in(files: list[str]) -> tuple[list[Manifest], int]:
    """The template documents of `files` (other kinds skipped: a file may hold a template
    and the Workflow that uses it), and how many files failed."""
    from shoal.template_files import is_template

    found: list[Manifest] = []
    bad = 0
    for path in files:
        try:
            manifests = load_manifests(path)
        except InvalidWorkflow as err:
            report_invalid(err)
            bad += 1
            continue
        templates = [m for m in manifests if is_template(m)]
        if not templates:
            msg = "no WorkflowTemplate or ClusterWorkflowTemplate (shoal validate checks others)"
            report_invalid(InvalidWorkflow([Problem(msg, field="kind")], source_name(path)))
            bad += 1
        found.extend(templates)
    return found, bad


def lint(files: list[str], template_paths: list[str], cluster: Any = None) -> int:
    """Check every template document: schema, DAG, expressions, references."""
    from shoal.manifests import compile_manifest
    from shoal.template_files import load_templates

    manifests, bad = _templates_in(files)
    try:
        templates = load_templates(template_paths, manifests)
    except InvalidWorkflow as err:
        return report_invalid(err)
    if cluster is not None:
        templates = {**cluster, **templates}
    for manifest in manifests:
        try:
            wf = compile_manifest(manifest, None, templates)
        except InvalidWorkflow as err:
            report_invalid(err)
            bad += 1
            continue
        kind = manifest.resource.kind
        out(f"{manifest.source}: {kind} {wf.meta.name}: valid ({len(wf.order)} nodes)")
    return EXIT_INVALID if bad else EXIT_OK


async def _list(api: KubeApi, namespace: str | None, args: argparse.Namespace) -> int:
    from shoal.kube.api import ApiError

    path = templates_path(namespace, cluster=args.cluster)
    try:
        items = (await api.get(path)).get("items") or []
    except ApiError as err:
        if err.status == 404:
            raise CliError(
                "this cluster has no template resources (or no such namespace): "
                "install Shoal's CRDs first (kubectl apply -f crds/)"
            ) from None
        raise
    if args.output != "text":
        _show({"items": items}, args.output)
        return EXIT_OK
    if not items:
        kind = "clusterworkflowtemplates" if args.cluster else "workflowtemplates"
        where = "the cluster" if args.cluster or namespace is None else namespace
        note(f"No {kind} in {where}.")
        return EXIT_OK
    shown = namespace is None and not args.cluster
    for line in template_rows(items, datetime.now(UTC), namespaces=shown):
        out(line)
    return EXIT_OK


def _show(obj: dict[str, Any], output: str) -> None:
    if output == "json":
        out(json.dumps(obj, indent=2, sort_keys=True))
    else:
        import yaml

        out(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True).rstrip("\n"))


async def _get(api: KubeApi, namespace: str, name: str, args: argparse.Namespace) -> int:
    from shoal.kube.api import ApiError

    kind = "ClusterWorkflowTemplate" if args.cluster else "WorkflowTemplate"
    try:
        obj = await api.get(templates_path(namespace, name, cluster=args.cluster))
    except ApiError as err:
        if err.status == 404:
            where = "" if args.cluster else f" in namespace {namespace!r}"
            raise CliError(f"{kind} {name!r} not found{where}") from None
        raise
    if args.output != "text":
        _show(obj, args.output)
        return EXIT_OK
    spec = obj.get("spec") or {}
    out(f"{kind}: {name}")
    for key, value in (spec.get("parameters") or {}).items():
        out(f"  parameter {key} = {json.dumps(value)}")
    rows = []
    for node in spec.get("nodes") or []:
        ref = node.get("templateRef") or {}
        work = node.get("job") or " ".join(node.get("command") or []) or node.get("image") or ""
        if ref:
            work = f"templateRef {ref.get('name')}" + (f"/{ref['node']}" if ref.get("node") else "")
        rows.append([node.get("name", ""), work[:60], ", ".join(node.get("dependsOn") or [])])
    for line in table(["NODE", "RUNS", "DEPENDS ON"], rows):
        out(line)
    return EXIT_OK


async def _create(api: KubeApi, namespace: str, args: argparse.Namespace) -> int:
    from shoal.kube.api import ApiError
    from shoal.kube.templates import fetch_templates
    from shoal.template_files import templates_of

    manifests, bad = _templates_in(args.args)
    if bad:
        return EXIT_INVALID
    cluster: dict[Any, Any] = {}
    given = templates_of(manifests)
    for template in given.values():
        found = await fetch_templates(api, namespace, template.spec)
        cluster |= {k: v for k, v in found.items() if k not in given}
    if lint(args.args, args.templates, cluster) != EXIT_OK:
        return EXIT_INVALID
    for manifest in manifests:
        raw = manifest.document.raw if manifest.document is not None else manifest.resource.dump()
        is_cluster = manifest.resource.kind == "ClusterWorkflowTemplate"
        body = dict(raw)
        if not is_cluster:
            body["metadata"] = {**(raw.get("metadata") or {}), "namespace": namespace}
        name = manifest.resource.metadata.name
        try:
            await api.request("POST", templates_path(namespace, cluster=is_cluster), body=body)
        except ApiError as err:
            if err.status == 409:
                raise CliError(
                    f"{manifest.resource.kind} {name!r} already exists "
                    "(kubectl apply -f updates it; running workflows keep their copy)"
                ) from None
            if err.status in (400, 422):
                raise CliError(
                    f"{manifest.source}: the API server rejected {name!r}: {err}", EXIT_INVALID
                ) from None
            raise
        out(f"{manifest.resource.kind.lower()} {name} created")
    return EXIT_OK
