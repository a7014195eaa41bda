"""The `shoal` command line.

Exit codes are part of the interface: 0 the workflow Succeeded (or the manifests are
valid), 1 it Failed or was Stopped, 2 the input is invalid and nothing ran.

Start-up is lazy: the top-level parser knows each command by name and one-line help
only, and the module that implements a command (and configures its parser) is
imported when that command is the one being run. `shoal --help` therefore loads
argparse and this file, and `shoal validate` the validator, never the executor, the
cluster client or the operator.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["COMMANDS", "Command", "build_parser", "chosen", "main"]


class Command:
    """A subcommand as the top-level parser lists it, and the module implementing it.

    That module's `configure(parser)` adds the command's arguments and handler. (A plain
    class: `dataclasses` and `typing` would cost `shoal --help` a third of its time.)
    """

    __slots__ = ("aliases", "module", "name", "summary")

    def __init__(self, name: str, module: str, summary: str, aliases: tuple[str, ...] = ()) -> None:
        self.name = name
        self.module = module
        self.summary = summary
        self.aliases = aliases

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


COMMANDS = (
    Command(
        "run",
        "shoal.cli.local_commands",
        "run a workflow manifest locally, one child process per node or item",
    ),
    Command("validate", "shoal.cli.validate_command", "check manifests without running anything"),
    Command(
        "operator",
        "shoal.cli.operator_command",
        "run the Kubernetes operator (watches Workflows, runs one Job per node or item)",
    ),
    Command(
        "submit",
        "shoal.cli.submit_command",
        "validate a Workflow manifest, then create it in the cluster",
    ),
    Command("get", "shoal.cli.get_command", "show a workflow: phase, progress, nodes, outputs"),
    Command(
        "list",
        "shoal.cli.list_command",
        "list workflows: name, phase, progress, age, message",
        aliases=("ls",),
    ),
    Command(
        "logs",
        "shoal.cli.logs_command",
        "print the logs of a workflow's pods (or a node's, or one item's)",
    ),
    Command("stop", "shoal.cli.stop_command", "stop a running workflow (spec.stop: true)"),
    Command(
        "retry",
        "shoal.cli.retry_command",
        "re-run the failed nodes of a Failed or Stopped workflow, keeping the rest",
    ),
    Command(
        "resubmit",
        "shoal.cli.resubmit_command",
        "run a workflow again as a new Workflow (from the cluster or the archive)",
    ),
    Command(
        "history",
        "shoal.cli.history_command",
        "list past runs from the archive (PostgreSQL), deleted Workflows included",
    ),
    Command("trigger", "shoal.cli.cron_commands", "start a run of a CronWorkflow now"),
    Command("server", "shoal.cli.server_command", "serve the REST API, authorized by RBAC"),
)


def chosen(argv: Sequence[str]) -> str | None:
    """The command word of `argv`: its first argument that is not an option."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """`shoal`'s parser; only the command named in `argv` gets its full parser."""
    parser = argparse.ArgumentParser(
        prog="shoal",
        description="Shoal: Kubernetes-native workflows, also runnable locally.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    word = chosen(argv)
    for command in COMMANDS:
        p = sub.add_parser(command.name, aliases=list(command.aliases), help=command.summary)
        if word == command.name or word in command.aliases:
            command.load().configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(args_in).parse_args(args_in)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
