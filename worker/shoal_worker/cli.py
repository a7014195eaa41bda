"""The ``shoal-worker`` command line, parsed by hand.

Every pod start pays for this, and argparse (with the shutil/compression modules its
help formatter pulls in) costs milliseconds on each one. The grammar is tiny.
"""

from __future__ import annotations

from .errors import UsageError
from .termination import DEFAULT_TERMINATION_PATH

USAGE = f"""\
usage: shoal-worker [run] [--job NAME] [--args JSON | --args-file PATH]
                    [--import MODULE]... [--termination-log PATH]
       shoal-worker list [--import MODULE]...
       shoal-worker exec [--output NAME=PATH]... -- COMMAND [ARG]...

Run one shoal job and report it with the @shoal/2 stdout protocol (docs/protocol.md).
Without a command, behaves like 'run'; each option falls back to an environment variable.

run options:
  --job NAME              job name or module:function            (SHOAL_JOB)
  --args JSON             arguments as a JSON object              (SHOAL_ARGS)
  --args-file PATH        file holding the JSON arguments, - for stdin (SHOAL_ARGS_FILE)
  --import MODULE         import a module that registers jobs; repeatable
                                                           (SHOAL_IMPORT, comma-separated)
  --termination-log PATH  where the final result is written
                          (SHOAL_TERMINATION_MESSAGE_PATH, default {DEFAULT_TERMINATION_PATH})

The attempt's token comes from SHOAL_PROTOCOL_TOKEN (set by the executor); every
protocol line and the termination message carry it.

list: print the names of the registered jobs (imports, entry points, built-ins).

exec: run COMMAND, then report each file PATH it wrote as the output NAME
(a command node's `outputs`, docs/workflows.md).

exit status: 0 succeeded, 1 the job failed, 2 usage error, 128+N killed by signal N
"""

_RUN_OPTIONS = ("--job", "--args", "--args-file", "--import", "--termination-log")
_LIST_OPTIONS = ("--import",)


class Options:
    """The parsed command line; None means "not given" (the environment decides)."""

    __slots__ = ("args", "args_file", "command", "help", "imports", "job", "termination_log")

    def __init__(self, command: str) -> None:
        self.command = command
        self.job: str | None = None
        self.args: str | None = None
        self.args_file: str | None = None
        self.imports: list[str] = []
        self.termination_log: str | None = None
        self.help = False


def parse_command_line(argv: list[str]) -> Options:
    """Parse ``argv`` (without the program name); raises UsageError saying what is wrong."""
    command, rest = "run", argv
    if argv and argv[0] in ("run", "list"):
        command, rest = argv[0], argv[1:]
    options = Options(command)
    allowed = _RUN_OPTIONS if command == "run" else _LIST_OPTIONS
    index = 0
    while index < len(rest):
        arg = rest[index]
        index += 1
        if arg in ("-h", "--help"):
            options.help = True
            continue
        name, equals, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name not in allowed:
            if arg.startswith("-"):
                raise UsageError(f"unknown option {name!r} for '{command}'")
            raise UsageError(f"unexpected argument {arg!r}")
        if not equals:
            if index >= len(rest) or rest[index].startswith("--"):
                raise UsageError(f"option {name} needs a value")
            value = rest[index]
            index += 1
        if name == "--import":
            options.imports.append(value)
        else:
            setattr(options, name[2:].replace("-", "_"), value)
    if options.args is not None and options.args_file is not None:
        raise UsageError("give either --args or --args-file, not both")
    return options


def termination_log_option(argv: list[str]) -> str | None:
    """``--termination-log`` from a command line rejected for another reason."""
    for index, arg in enumerate(argv):
        if arg == "--termination-log" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--termination-log="):
            return arg.partition("=")[2]
    return None
