"""`shoal validate`: check manifests (schema, DAG, expressions) without running anything.

It loads the manifest models and the validator, nothing of the executor or a cluster
client, so checking a file costs little more than parsing it.
"""

from __future__ import annotations

import argparse

from shoal.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    load_manifests,
    parse_params,
    report_invalid,
    report_warnings,
    source_name,
)

__all__ = ["configure", "validate"]


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal validate`'s arguments and handler."""
    p.description = "Check manifests: schema, DAG, expressions. Exit 2 on any problem."
    p.add_argument("files", nargs="+", help="manifests (YAML); - reads one from stdin")
    p.add_argument(
        "-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="as for run"
    )
    p.set_defaults(handler=validate)


def validate(args: argparse.Namespace) -> int:
    """Check every document of every file; report all problems, exit 2 if there are any."""
    from shoal.core.validation import InvalidWorkflow
    from shoal.manifests import compile_manifest

    try:
        params = parse_params(args.param)
    except InvalidWorkflow as err:
        return report_invalid(err)
    bad = 0
    for path in args.files:
        try:
            for manifest in load_manifests(path):
                report_warnings(manifest)
                wf = compile_manifest(manifest, params)
                kind = manifest.resource.kind
                print(f"{source_name(path)}: {kind} {wf.meta.name}: valid ({len(wf.order)} nodes)")
        except InvalidWorkflow as err:
            report_invalid(err)
            bad += 1
    return EXIT_INVALID if bad else EXIT_OK
