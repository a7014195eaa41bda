"""The ``shoal-worker`` entrypoint: run exactly one job and report it.

Every pod runs ``shoal-worker`` with the job and its arguments in the environment. The
outcome leaves the process three ways, so the control plane gets it even when one path
breaks: protocol lines on stdout, the termination-message file, and the exit code
(0 succeeded, 1 the job failed, 2 the worker was started wrongly, 128+N a signal).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import signal
import sys
import threading

from . import registry
from .args import bind
from .cli import USAGE, Options, parse_command_line, termination_log_option
from .context import Context
from .emit import Emitter, LineSafeWriter
from .errors import JobFailed, OutputError, Terminated, UsageError
from .protocol import TOKEN_ENV, ErrorMessage, ResultMessage
from .store_env import lazy_store as _lazy_store
from .store_env import offloader as _offloader
from .termination import (
    DEFAULT_TERMINATION_PATH,
    build_termination_message,
    write_termination_message,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from types import FrameType, TracebackType
    from typing import Any


EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
_MAX_TRACEBACK_CHARS = 64 * 1024


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Called without ``argv`` it is the process entrypoint: if the job left non-daemon
    threads running, it exits anyway (after reporting) instead of hanging the pod.
    """
    code = _main(sys.argv[1:] if argv is None else list(argv))
    if argv is None:
        _exit_if_threads_linger(code)
    return code


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "exec":  # a plain command with outputs read from files
        from .file_outputs import exec_main

        return exec_main(argv[1:])
    try:
        options = parse_command_line(argv)
    except UsageError as exc:
        if argv and argv[0] == "list":
            print(f"shoal-worker: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        # `run` (or the default): a pod still gets a result and a termination message.
        return _run(None, exc, os.environ, termination_log_option(argv))
    if options.help:
        print(USAGE, end="")
        return EXIT_SUCCEEDED
    if options.command == "list":
        return _list(options.imports, os.environ)
    return _run(options, None, os.environ, options.termination_log)


def _list(imports: list[str], env: Mapping[str, str]) -> int:
    try:
        registry.import_modules([*imports, *_env_imports(env)])
    except UsageError as exc:
        print(f"shoal-worker: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for problem in registry.load_entry_points():
        print(f"shoal-worker: warning: entry point failed: {problem}", file=sys.stderr)
    for name in registry.names():
        print(name)
    return EXIT_SUCCEEDED


def _env_imports(env: Mapping[str, str]) -> list[str]:
    return [name.strip() for name in env.get("SHOAL_IMPORT", "").split(",") if name.strip()]


def _run(
    options: Options | None,
    problem: UsageError | None,
    env: Mapping[str, str],
    termination_log: str | None,
) -> int:
    path = termination_log or env.get("SHOAL_TERMINATION_MESSAGE_PATH") or DEFAULT_TERMINATION_PATH
    token = env.get(TOKEN_ENV, "")
    if env is os.environ:
        # Only the worker reports: job code and the programs it starts do not need the
        # token, and a job that dumps its environment should not print it.
        os.environ.pop(TOKEN_ENV, None)
    stdout = sys.stdout
    _prefer_utf8(stdout)
    lock = threading.RLock()
    writer = LineSafeWriter(stdout, lock)
    sys.stdout = writer
    try:
        worker = _Worker(Emitter(stdout, lock, token=token), path)
        if problem is not None or options is None:
            return worker.usage_error(problem or UsageError("bad command line"))
        return worker.run(options, env)
    finally:
        writer.drain()
        sys.stdout = stdout


class _Worker:
    """One run: prepare the job, call it, report the outcome everywhere."""

    def __init__(self, emitter: Emitter, termination_path: str) -> None:
        self.emitter = emitter
        self.termination_path = termination_path

    def run(self, options: Options, env: Mapping[str, str]) -> int:
        # Armed from the start: importing job modules can take a while, and a pod
        # deleted meanwhile must still report why it ended.
        with _SigtermGuard() as guard:
            try:
                name, ctx, call = self.prepare(options, env)
            except UsageError as exc:
                guard.disarm()
                return self.usage_error(exc)
            except Terminated as exc:
                guard.disarm()
                self.emitter.emit(_error_message(exc))
                self.finish("failed", {}, "terminated by SIGTERM")
                return 128 + exc.signum
            except _ArtifactFailure as exc:  # an argument's artifact could not be read
                guard.disarm()
                self.emitter.emit(_error_message(exc))
                self.finish("failed", {}, f"cannot read an argument: {exc}")
                return EXIT_FAILED
            return self.call(name, ctx, call, guard)

    def prepare(
        self, options: Options, env: Mapping[str, str]
    ) -> tuple[str, Context, Callable[[], Any]]:
        """Import, find the job, read and check its arguments; UsageError if anything fails."""
        registry.import_modules([*options.imports, *_env_imports(env)])
        args = _load_args(options, env)
        name = (options.job or env.get("SHOAL_JOB", "")).strip()
        if not name:
            raise UsageError("no job given: pass --job NAME or set SHOAL_JOB")
        spec = registry.resolve(name)
        for problem in registry.entry_point_problems():
            print(f"shoal-worker: warning: entry point failed: {problem}", file=sys.stderr)
        store = _lazy_store(env)
        if store is not None:
            from .artifacts import ArtifactError
            from .offload import resolve_values

            try:
                args = resolve_values(args, store)
            except (ArtifactError, ValueError) as exc:  # not found, corrupted, unreachable
                raise _ArtifactFailure(str(exc)) from None
        try:
            ctx = Context(
                args,
                emitter=self.emitter,
                env=env,
                offload=_offloader(env, store),
                artifact_store=store,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return spec.name, ctx, bind(spec, args, ctx)

    def call(self, name: str, ctx: Context, call: Callable[[], Any], guard: _SigtermGuard) -> int:
        """Run the job and report it; returns the exit status."""
        error: ErrorMessage | None = None
        try:
            try:
                value = call()
                if inspect.isawaitable(value):
                    value = _run_async(value, guard)
            finally:
                # From here on a late SIGTERM must not interrupt the report. One that
                # lands before this line is caught below and reported as terminated.
                guard.disarm()
            try:
                ctx._record_outputs(_returned_outputs(value))
            except OutputError as exc:
                raise JobFailed(f"job {name!r} returned an unusable value: {exc}") from None
            status, code, message = "succeeded", EXIT_SUCCEEDED, ""
        except JobFailed as exc:
            status, code, message = "failed", exc.exit_code, exc.message
        except SystemExit as exc:
            status, code, message = _system_exit(exc)
        except KeyboardInterrupt as exc:
            error = _error_message(exc)
            status, code, message = "failed", 128 + signal.SIGINT, "interrupted by SIGINT"
        except BaseException as exc:  # Terminated, or anything the job raised
            error = _error_message(exc)
            if isinstance(exc, Terminated) or guard.fired:
                status, code = "failed", 128 + (guard.signum or signal.SIGTERM)
                message = "terminated by SIGTERM"
                if not isinstance(exc, Terminated):
                    message += f" ({error.error_type}: {error.message})"
            else:
                status, code = "failed", EXIT_FAILED
                message = f"{error.error_type}: {error.message}".removesuffix(": ")
        ctx.flush_progress()
        if error is not None:
            self.emitter.emit(error)
        self.finish(status, ctx.outputs, message)
        return code

    def usage_error(self, exc: UsageError) -> int:
        text = str(exc)
        print(f"shoal-worker: error: {text}", file=sys.stderr, flush=True)
        trace = _format_traceback(exc.__cause__) if exc.__cause__ is not None else None
        self.emitter.emit(ErrorMessage(text, "UsageError", trace))
        self.finish("failed", {}, text)
        return EXIT_USAGE

    def finish(self, status: str, outputs: dict[str, Any], message: str) -> None:
        self.emitter.emit(ResultMessage(status, outputs, message or None))  # type: ignore[arg-type]
        data = build_termination_message(status, outputs, message, token=self.emitter.token)
        write_termination_message(self.termination_path, data)


class _SigtermGuard:
    """While armed, SIGTERM raises Terminated in the main thread (once)."""

    def __init__(self) -> None:
        self.armed = True
        self.fired = False
        self.signum: int | None = None
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _SigtermGuard:
        self.install()
        return self

    def install(self) -> None:
        try:
            previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            return
        if not self._installed:
            self._previous, self._installed = previous, True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.armed and not self.fired:
            self.fire(signum)
            raise Terminated(signum)

    def fire(self, signum: int) -> None:
        self.fired, self.signum = True, signum

    def disarm(self) -> None:
        self.armed = False

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)


def _run_async(awaitable: Awaitable[Any], guard: _SigtermGuard) -> Any:
    """Run an async job; SIGTERM cancels its task so its cleanups run, then Terminated."""
    import asyncio

    async def drive() -> Any:
        task = asyncio.ensure_future(awaitable)
        loop = asyncio.get_running_loop()

        def on_sigterm() -> None:
            if guard.armed and not guard.fired:
                guard.fire(int(signal.SIGTERM))
                task.cancel()

        try:
            loop.add_signal_handler(signal.SIGTERM, on_sigterm)
            installed = True
        except (NotImplementedError, RuntimeError, ValueError):
            installed = False
        try:
            return await task
        except asyncio.CancelledError:
            if guard.fired:
                raise Terminated(int(signal.SIGTERM)) from None
            raise
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGTERM)
                guard.install()  # remove_signal_handler resets SIGTERM to the default

    return asyncio.run(drive())


class _ArtifactFailure(Exception):
    """Reading an argument's artifact failed (the store's ArtifactError, imported late)."""


def _returned_outputs(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return {"result": value}


def _system_exit(exc: SystemExit) -> tuple[str, int, str]:
    code = exc.code
    if code is None or code == 0:
        return "succeeded", EXIT_SUCCEEDED, ""
    if isinstance(code, int):
        exit_code = code if 1 <= code <= 255 else EXIT_FAILED
        return "failed", exit_code, f"the job called sys.exit({code})"
    return "failed", EXIT_FAILED, str(code)


def _error_message(exc: BaseException) -> ErrorMessage:
    kind = type(exc)
    module = kind.__module__
    name = (
        kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    )
    if isinstance(exc, Terminated):
        name = "Terminated"
    return ErrorMessage(str(exc), name, _format_traceback(exc))


def _format_traceback(exc: BaseException) -> str:
    import traceback

    tb: TracebackType | None = exc.__traceback__
    # Start at the job's own code: the runner's and asyncio's frames are noise.
    while tb is not None and tb.tb_next is not None and _is_plumbing(tb):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    if len(text) > _MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-_MAX_TRACEBACK_CHARS:]
    return text


def _is_plumbing(tb: TracebackType) -> bool:
    code = tb.tb_frame.f_code
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    return code.co_filename == __file__ or module == "asyncio" or module.startswith("asyncio.")


def _load_args(options: Options, env: Mapping[str, str]) -> dict[str, Any]:
    if options.args is not None:
        return _parse_args_json(options.args, "--args")
    if options.args_file is not None:
        return _read_args_file(options.args_file, "--args-file")
    text, path = env.get("SHOAL_ARGS", "").strip(), env.get("SHOAL_ARGS_FILE", "").strip()
    if text and path:
        raise UsageError("both SHOAL_ARGS and SHOAL_ARGS_FILE are set; set only one")
    if text:
        return _parse_args_json(text, "SHOAL_ARGS")
    if path:
        return _read_args_file(path, "SHOAL_ARGS_FILE")
    return {}


def _read_args_file(path: str, source: str) -> dict[str, Any]:
    label = f"{source} {path}"
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        raise UsageError(f"{label}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: not UTF-8 text: {exc}") from None
    return _parse_args_json(text, label)


def _parse_args_json(text: str, label: str) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{label}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{label}: invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else type(value).__name__
        raise UsageError(f"{label}: expected a JSON object of arguments, got {kind}")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _prefer_utf8(stream: Any) -> None:
    """Protocol lines are UTF-8; a lone surrogate becomes a JSON escape, not a crash."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is None:
        return
    with contextlib.suppress(ValueError, OSError, io.UnsupportedOperation):
        reconfigure(encoding="utf-8", errors="backslashreplace")


def _exit_if_threads_linger(code: int) -> None:
    lingering = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon and thread.is_alive()
    ]
    if not lingering:
        return
    names = ", ".join(thread.name for thread in lingering[:5])
    print(
        f"shoal-worker: warning: the job left {len(lingering)} non-daemon thread(s) running "
        f"({names}); exiting anyway",
        file=sys.stderr,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    raise SystemExit(main())
