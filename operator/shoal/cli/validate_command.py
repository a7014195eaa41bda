"""`shoal validate`: check manifests (schema, DAG, expressions) without running anything.

It loads the manifest models and the validator, nothing of the executor or a cluster
client, so checking a file costs little more than parsing it.
"""

from __future__ import annotations

import argparse

from shoal.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    STDIN,
    load_manifests,
    parse_params,
    report_invalid,
    report_warnings,
    source_name,
)

TYPE_CHECKING = False  # `typing` and `pathlib` would cost `shoal validate` (issue 17)
if TYPE_CHECKING:
    from typing import Any

    from shoal.core.compiled import CompiledWorkflow
    from shoal.manifests import Manifest

__all__ = ["check_jobs", "configure", "validate"]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal validate`'s arguments and handler."""
    p.description = (
        "Check manifests: schema, DAG, expressions; with --import also job names and "
        "arguments. Exit 2 on any problem."
    )
    p.add_argument("files", nargs="+", help="manifests (YAML); - reads one from stdin")
    p.add_argument(
        "-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="as for run"
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="module that registers jobs (@job), looked for as by `shoal run --import`; "
        "every job node's job name and literal args are then checked against it",
    )
    from shoal.template_files import TEMPLATES_HELP

    p.add_argument("--templates", action="append", default=[], metavar="PATH", help=TEMPLATES_HELP)
    p.set_defaults(handler=validate)


def validate(args: argparse.Namespace) -> int:
    """Check every document of every file; report all problems, exit 2 if there are any.

    Valid files are vouched for by the fast path (`shoal.fast_validate`, no pydantic);
    whatever it cannot vouch for is judged here by the models, which word every error."""
    from shoal.core.validation import InvalidWorkflow

    try:
        params = parse_params(args.param)
    except InvalidWorkflow as err:
        return report_invalid(err)
    if not args.imports and not args.templates:
        from shoal.fast_validate import print_results, validate_fast

        if (results := validate_fast(args.files, params)) is not None:
            print_results(results)
            return EXIT_OK
    return _validate_with_models(args, params)


def _validate_with_models(args: argparse.Namespace, params: dict[str, Any]) -> int:
    from shoal.core.validation import InvalidWorkflow
    from shoal.manifests import compile_manifest
    from shoal.template_files import load_templates

    bad = 0
    loaded: dict[str, list[Manifest]] = {}
    for path in args.files:
        try:
            loaded[path] = load_manifests(path)
        except InvalidWorkflow as err:
            report_invalid(err)
            bad += 1
    try:
        templates = load_templates(args.templates, [m for ms in loaded.values() for m in ms])
    except InvalidWorkflow as err:
        return report_invalid(err)
    for path, manifests in loaded.items():
        try:
            for manifest in manifests:
                report_warnings(manifest)
                wf = compile_manifest(manifest, params, templates)
                check_jobs(manifest, wf, args.imports, path)
                kind = manifest.resource.kind
                print(f"{source_name(path)}: {kind} {wf.meta.name}: valid ({len(wf.order)} nodes)")
        except InvalidWorkflow as err:
            report_invalid(err)
            bad += 1
    return EXIT_INVALID if bad else EXIT_OK


def check_jobs(manifest: Manifest, wf: CompiledWorkflow, imports: list[str], path: str) -> None:
    """InvalidWorkflow if a known `forEach` is no list or (given `--import` modules) a job
    node names an unknown job or arguments its function does not take.

    `shoal run` calls this too, so both commands find modules in the same places."""
    from shoal.job_check import check_manifest, import_jobs_for

    if imports:
        from pathlib import Path

        folder = Path.cwd() if path == STDIN else Path(path).resolve().parent
        import_jobs_for(imports, folder, source_name(path))
    check_manifest(manifest, wf, imports)
