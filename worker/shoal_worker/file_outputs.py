"""``shoal-worker exec``: run a plain command, then publish files it wrote as outputs.

A command node that declares ``outputs: {name: {path: ...}}`` runs under this wrapper
(the executors add it; the job itself prints no protocol line). The command's stdout
passes through unchanged (so ``captureStdout`` and the log still see it), signals are
forwarded, and once the command has exited 0 each declared file is read, bounded, and
reported in the attempt's result like any job output: offloaded to the artifact store
when large. A missing, unreadable or oversized file fails the attempt with a message
naming the output and its path; a failed command keeps its own exit code and is not
second-guessed (its files are not read).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from .emit import Emitter
from .errors import UsageError
from .protocol import TOKEN_ENV, ResultMessage
from .store_env import lazy_store, offloader
from .termination import (
    DEFAULT_TERMINATION_PATH,
    build_termination_message,
    write_termination_message,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import IO, Any

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EXEC_USAGE",
    "ExecOptions",
    "exec_main",
    "expand",
    "parse_exec",
    "read_output",
]

DEFAULT_MAX_BYTES = 256 * 1024
"""Largest output file read, unless ``--max-bytes`` says otherwise (the control plane
passes its MAX_OUTPUT_FILE_BYTES)."""
EXIT_CANNOT_START = 127
_CHUNK = 64 * 1024
_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

EXEC_USAGE = """\
usage: shoal-worker exec [--output NAME=PATH]... [--max-bytes N]
                         [--termination-log PATH] -- COMMAND [ARG]...

Run COMMAND; when it exits 0, publish each file PATH as the output NAME (its text, less
one trailing newline), offloaded to the artifact store when large. A missing file fails
the attempt naming the output and the path.
"""


class ExecOptions:
    """The parsed ``exec`` command line."""

    __slots__ = ("command", "max_bytes", "outputs", "termination_log")

    def __init__(self) -> None:
        self.outputs: list[tuple[str, str]] = []
        self.max_bytes = DEFAULT_MAX_BYTES
        self.termination_log: str | None = None
        self.command: list[str] = []


def parse_exec(argv: list[str]) -> ExecOptions:
    """Parse ``exec``'s arguments (after the word ``exec``); UsageError says what is wrong."""
    options = ExecOptions()
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            options.command = argv[index + 1 :]
            break
        if index + 1 >= len(argv):
            raise UsageError(f"option {arg} needs a value")
        value = argv[index + 1]
        index += 2
        if arg == "--output":
            name, equals, path = value.partition("=")
            if not name or not equals or not path:
                raise UsageError(f"--output wants NAME=PATH, got {value!r}")
            options.outputs.append((name, path))
        elif arg == "--max-bytes" and value.isdigit():
            options.max_bytes = int(value)
        elif arg == "--termination-log":
            options.termination_log = value
        else:
            raise UsageError(f"unexpected argument {arg!r} for 'exec'")
    if not options.command:
        raise UsageError("no command given: shoal-worker exec [options] -- COMMAND [ARG]...")
    return options


def expand(path: str, env: Mapping[str, str]) -> str:
    """`$(NAME)` replaced by the variable's value, as Kubernetes expands a container's
    command line (an unknown name stays as written); the same in a local run."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), path)


def read_output(name: str, path: str, max_bytes: int) -> str:
    """The text of output ``name`` from ``path``; ValueError names the output and path."""
    where = f"output {name!r} from {path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ValueError(
            f"{where}: no such file (the command exited 0 without writing it)"
        ) from None
    except IsADirectoryError:
        raise ValueError(f"{where}: is a directory, not a file") from None
    except OSError as exc:
        raise ValueError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ValueError(
            f"{where}: larger than {max_bytes} bytes, the limit MAX_OUTPUT_FILE_BYTES "
            "(write large data as an artifact)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not UTF-8 text") from None
    return text.removesuffix("\n")


def exec_main(argv: list[str], env: Mapping[str, str] | None = None) -> int:
    """Run ``shoal-worker exec``; returns the exit status (the command's when it failed)."""
    env = os.environ if env is None else env
    try:
        options = parse_exec(argv)
    except UsageError as exc:
        print(f"shoal-worker: error: {exc}\n{EXEC_USAGE}", file=sys.stderr, end="")
        return 2
    stdout = sys.stdout.buffer
    try:
        child = subprocess.Popen(options.command, stdout=subprocess.PIPE)
    except OSError as exc:
        message = f"cannot start {options.command[0]!r}: {exc.strerror or exc}"
        print(f"shoal-worker: {message}", file=sys.stderr, flush=True)
        _report(options, env, "failed", {}, message, at_line_start=True)
        return EXIT_CANNOT_START
    previous = {
        signum: signal.signal(signum, lambda s, _f: child.send_signal(s))
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        at_line_start = _forward(child.stdout, stdout)
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if code != 0:
        return 128 - code if code < 0 else code
    try:
        outputs = _outputs(options, env)
    except ValueError as exc:  # the result carries it: no stderr copy to repeat it
        _report(options, env, "failed", {}, str(exc), at_line_start)
        return 1
    _report(options, env, "succeeded", outputs, "", at_line_start)
    return 0


def _forward(source: IO[bytes] | None, target: IO[bytes]) -> bool:
    """Copy the command's stdout as it comes; True when it ended at a line start."""
    last = b"\n"
    if source is None:
        return True
    read = getattr(source, "read1", source.read)  # read1: what has arrived, not 64 KiB
    while chunk := read(_CHUNK):
        target.write(chunk)
        target.flush()
        last = chunk[-1:]
    return last == b"\n"


def _outputs(options: ExecOptions, env: Mapping[str, str]) -> dict[str, Any]:
    """Every declared file as an output, offloaded like a job's when a store is set."""
    values = {
        name: read_output(name, expand(path, env), options.max_bytes)
        for name, path in options.outputs
    }
    try:
        offload = offloader(env, lazy_store(env))
    except UsageError as exc:
        raise ValueError(f"artifact store settings: {exc}") from None
    if offload is None:
        return dict(values)
    try:
        return {name: offload(name, value) for name, value in values.items()}
    except Exception as exc:  # the store's ArtifactError, a network error: name the output
        raise ValueError(f"cannot store the outputs in the artifact store: {exc}") from None


def _report(
    options: ExecOptions,
    env: Mapping[str, str],
    status: str,
    outputs: dict[str, Any],
    message: str,
    at_line_start: bool,
) -> None:
    """The result on stdout (at column 0, where a message must start) and in the
    termination message, as ``shoal-worker run`` reports a job."""
    token = env.get(TOKEN_ENV, "")
    stream = sys.stdout
    if not at_line_start:
        stream.write("\n")
    Emitter(stream, token=token).emit(ResultMessage(status, outputs, message or None))  # type: ignore[arg-type]
    path = (
        options.termination_log
        or env.get("SHOAL_TERMINATION_MESSAGE_PATH")
        or DEFAULT_TERMINATION_PATH
    )
    data = build_termination_message(status, outputs, message, token=token)
    write_termination_message(path, data)
