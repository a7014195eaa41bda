"""The `shoal` command line.

Exit codes are part of the interface: 0 the workflow Succeeded (or the manifests are
valid), 1 it Failed or was Stopped, 2 the input is invalid and nothing ran.

Start-up is lazy: the top-level parser knows each command by name and one-line help
only, and the module that implements a command (and configures its parser) is
imported when that command is the one being run. `shoal --help` therefore loads
argparse and this file, and `shoal validate` the validator, never the executor, the
cluster client or the operator.

Every command's own arguments are parsed with `parse_intermixed_args`, so options may
follow positional arguments (`shoal logs NAME -n ns NODE`), as with kubectl. A closed
pipe on stdout (`shoal get NAME --watch | head -1`) ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

TYPE_CHECKING = False  # `typing` itself would cost `shoal --help` a noticeable share
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = [
    "COMMANDS",
    "EXIT_BROKEN_PIPE",
    "Command",
    "Parser",
    "build_parser",
    "chosen",
    "command_parser",
    "find",
    "main",
    "parse",
]


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
        "terminate",
        "shoal.cli.terminate_command",
        "stop a workflow without running its runPolicy: always nodes (spec.terminate: true)",
    ),
    Command(
        "suspend",
        "shoal.cli.suspend_command",
        "start nothing new in a workflow until resumed (spec.suspend: true)",
    ),
    Command(
        "resume",
        "shoal.cli.resume_command",
        "approve or reject a workflow's approval gates; lift spec.suspend",
    ),
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
    Command(
        "cron",
        "shoal.cli.cron_admin_command",
        "list CronWorkflows (schedule, next and last run), suspend or resume one",
    ),
    Command(
        "template",
        "shoal.cli.template_command",
        "list, show, create or lint WorkflowTemplates and ClusterWorkflowTemplates",
    ),
    Command("delete", "shoal.cli.delete_command", "delete Workflows by name or label selector"),
    Command(
        "wait",
        "shoal.cli.wait_command",
        "wait until workflows reach a phase, or finish (exit 1 on timeout)",
    ),
    Command(
        "completion",
        "shoal.cli.completion_command",
        "print a shell completion script (bash, zsh or fish)",
    ),
)

EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell reports for a process a closed pipe ended."""


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line error: `error: ...`, a pointer to --help, exit 2;
    its help formatter needs no `shutil` (cli/help_width.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from shoal.cli.help_width import HelpFormatter

        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


class VersionAction(argparse.Action):
    """`--version`: the installed distribution's version, read only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print shoal's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("shoal")
        except PackageNotFoundError:
            found = "unknown (not installed as a distribution)"
        sys.stdout.write(f"shoal {found}\n")
        parser.exit()


def chosen(argv: Sequence[str]) -> str | None:
    """The command word of `argv`: its first argument that is not an option."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: Sequence[str] = (), *, everything: bool = False) -> argparse.ArgumentParser:
    """`shoal`'s parser; only the command named in `argv` (or, with `everything`, each
    command) gets its full parser."""
    parser = Parser(
        prog="shoal",
        description="Shoal: Kubernetes-native workflows, also runnable locally.",
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    word = chosen(argv)
    for command in COMMANDS:
        p = sub.add_parser(command.name, aliases=list(command.aliases), help=command.summary)
        if everything or word == command.name or word in command.aliases:
            command.load().configure(p)
    return parser


def find(word: str | None) -> Command | None:
    """The command called `word` (or by one of its aliases)."""
    return next((c for c in COMMANDS if word == c.name or word in c.aliases), None)


def command_parser(command: Command) -> argparse.ArgumentParser:
    """The command's own parser, as `shoal COMMAND` (what `build_parser` nests)."""
    parser = Parser(prog=f"shoal {command.name}")
    command.load().configure(parser)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments: the top level picks the command, whose parser reads the rest
    intermixed (options before, between or after its positional arguments)."""
    word = chosen(argv)
    command = find(word)
    if command is None or any(a.startswith("-") for a in argv[: argv.index(str(word))]):
        return build_parser(argv).parse_args(argv)  # usage errors, --help, --version
    rest = argv[argv.index(str(word)) + 1 :]
    return command_parser(command).parse_intermixed_args(rest)


def main(argv: Sequence[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse(args_in)
        code: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head -1`): say nothing, and keep the interpreter's
        # final flush from failing on the same pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as err:  # an expected failure raised outside a cluster session
        from shoal.cli.common import CliError, fail  # loaded already if it is one

        if not isinstance(err, CliError):
            raise
        return fail(str(err), err.code)
    return code


if __name__ == "__main__":
    sys.exit(main())
