"""The `shoal` command line.

Exit codes are part of the interface: 0 the workflow Succeeded (or the manifests are
valid), 1 it Failed or was Stopped, 2 the input is invalid and nothing ran.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shoal.cli import (
    cluster_commands,
    cron_commands,
    history_command,
    local_commands,
    operator_command,
    resubmit_command,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shoal",
        description="Shoal: Kubernetes-native workflows, also runnable locally.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a workflow manifest locally, one child process per node or item",
        description="Run a Workflow (or a CronWorkflow's workflowSpec, once) on this machine.",
    )
    run.add_argument("file", help="manifest (YAML)")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a parameter; VALUE is read as JSON when it parses (3, true, [1,2]), else as text",
    )
    run.add_argument(
        "--name", help="which document to run when the file holds several (metadata.name)"
    )
    run.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="module that registers jobs (@job); the manifest's folder is on the import path",
    )
    run.add_argument("--workdir", help="where attempts keep their logs (default: a temp dir)")
    run.add_argument(
        "--artifacts",
        metavar="URL",
        help="artifact store: s3://bucket/prefix (S3 options from SHOAL_S3_* and AWS_* "
        "variables) or a folder (default: $SHOAL_ARTIFACTS, else WORKDIR/artifacts)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="hide job log lines")
    run.add_argument(
        "--plain", action="store_true", help="plain lines even on a terminal (no live view)"
    )
    run.add_argument(
        "-o",
        "--output",
        choices=["text", "json"],
        default="text",
        help="json: print the final status as JSON on stdout (progress goes to stderr)",
    )
    run.set_defaults(handler=local_commands.run)

    validate = sub.add_parser(
        "validate",
        help="check manifests without running anything",
        description="Check manifests: schema, DAG, expressions. Exit 2 on any problem.",
    )
    validate.add_argument("files", nargs="+", help="manifests (YAML)")
    validate.add_argument(
        "-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="as for run"
    )
    validate.set_defaults(handler=local_commands.validate)
    operator_command.add_parser(sub)
    cluster_commands.add_parsers(sub)
    resubmit_command.add_parser(sub)
    history_command.add_parser(sub)
    cron_commands.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
