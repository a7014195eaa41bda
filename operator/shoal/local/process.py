"""One attempt of one node as a local child process: the local stand-in for a pod.

A job node runs `shoal-worker run --job ...` from the same Python environment as `shoal`;
a command node runs its command. Either way the child gets the same `SHOAL_*` environment
a pod would, its stdout is parsed live as the line protocol, its stderr becomes log lines,
and its final word is read from the termination-message file, exactly as on a cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from shoal.core.collector import Outcome, StreamCollector
from shoal.core.compiled import CompiledNode, CompiledWorkflow
from shoal.core.decisions import StartTask
from shoal.linesplit import CUT_NOTE, LineCutter
from shoal.local.logs import AttemptLog
from shoal.local.reactor import Handle, current
from shoal.local.spawn import Child, spawn
from shoal_worker.protocol import TOKEN_ENV, ErrorMessage, Message, PlainLine
from shoal_worker.records import Record, field

KILL_GRACE_SECONDS = 5.0
"""After SIGTERM, a child has this long to exit before SIGKILL (a pod's grace period)."""

PIPE_DRAIN_SECONDS = 5.0
"""After the child exits, how long its output pipes may stay open (held by a grandchild)."""

MAX_LINE_BYTES = 1024 * 1024
"""A line of a child's output longer than this is cut: what follows, up to its newline,
is dropped and counted, so a huge line can neither stall the run nor fill its memory."""

TERMINATION_READ_BYTES = 64 * 1024
"""Read of a termination-message file (a pod's is capped at 4 KiB; the collector bounds
what it keeps)."""

WORKER_USAGE_EXIT = 2
"""`shoal-worker` exits 2 for usage errors (unknown job, bad args): retrying cannot help."""

OnMessage = Callable[[str, int, Message], None]


class LaunchError(Exception):
    """The attempt could not even start (for example an env reference with no local value)."""


MAX_ARGS_ENV_BYTES = 32 * 1024
"""Arguments up to this size travel in `SHOAL_ARGS`; larger ones in a file."""


def worker_argv(job: str, args_file: Path | None, termination_file: Path) -> list[str]:
    """The command line that runs a registered job with this interpreter's shoal-worker.

    Without `args_file` the worker reads its arguments from `SHOAL_ARGS`.
    """
    argv = [sys.executable, "-m", "shoal_worker.runner", "run", "--job", job]
    if args_file is not None:
        argv += ["--args-file", str(args_file)]
    return [*argv, "--termination-log", str(termination_file)]


def import_env(
    environ: Mapping[str, str], extra_pythonpath: list[Path], imports: list[str]
) -> dict[str, str]:
    """The caller's environment with the job modules' folders on `PYTHONPATH` (first) and
    `--import` modules in `SHOAL_IMPORT`: what every worker of the run starts from."""
    base = dict(environ)
    paths = [str(p) for p in extra_pythonpath]
    if base.get("PYTHONPATH"):
        paths.append(base["PYTHONPATH"])
    if paths:
        base["PYTHONPATH"] = os.pathsep.join(paths)
    if imports:
        base["SHOAL_IMPORT"] = ",".join([*imports, *filter(None, [base.get("SHOAL_IMPORT")])])
    return base


NEVER_INHERITED = ("SHOAL_ARGS", "SHOAL_ARGS_FILE", "SHOAL_ITEM", "SHOAL_ITEM_INDEX", TOKEN_ENV)
"""Variables an attempt sets for itself: never the caller's."""


def node_env(wf: CompiledWorkflow, node: CompiledNode, base: dict[str, str]) -> dict[str, str]:
    """The part of a child's environment every attempt of `node` shares, built once per node:
    the caller's environment plus what a pod of this node would see."""
    env = {k: v for k, v in base.items() if k not in NEVER_INHERITED}
    env.update(
        SHOAL_WORKFLOW=wf.meta.name,
        SHOAL_NAMESPACE=wf.meta.namespace,
        SHOAL_NODE=node.name,
        PYTHONUNBUFFERED="1",
    )
    return env


def local_env(
    wf: CompiledWorkflow,
    node: CompiledNode,
    task: StartTask,
    base: dict[str, str],
    shared: dict[str, str] | None = None,
) -> dict[str, str]:
    """One attempt's environment: `shared` (from `node_env`, which the executor builds once
    per node) plus the attempt's own values.

    `valueFrom` references have no cluster to resolve against, so a local run takes the
    value from the caller's environment variable of the same name and refuses to start
    the attempt (naming the variable) when there is none.
    """
    env = (shared if shared is not None else node_env(wf, node, base)).copy()
    env["SHOAL_ATTEMPT"] = str(task.attempt)
    if node.fan_out:
        env["SHOAL_ITEM_INDEX"] = str(task.index)
        item = task.item  # an int's JSON is its str(), without the encoder's set-up
        env["SHOAL_ITEM"] = (
            str(item) if type(item) is int else json.dumps(item, separators=(",", ":"))
        )
    env.update(task.env)
    for ref in node.env_refs:
        source = ref.value_from
        if source is not None and source.field_ref is not None:
            env[ref.name] = _field_value(wf, node, task, source.field_ref.field_path)
        elif ref.name in base:
            env[ref.name] = base[ref.name]
        elif not _optional(ref):
            raise LaunchError(
                f"env {ref.name}: a Secret/ConfigMap reference has no value in a local run; "
                f"export {ref.name} before `shoal run`"
            )
    return env


def _optional(ref: object) -> bool:
    source = getattr(ref, "value_from", None)
    key_ref = source and (source.secret_key_ref or source.config_map_key_ref)
    return bool(key_ref and key_ref.optional)


def _field_value(wf: CompiledWorkflow, node: CompiledNode, task: StartTask, path: str) -> str:
    values = {
        "metadata.name": f"{wf.meta.name}-{node.name}-{task.index}-{task.attempt}",
        "metadata.namespace": wf.meta.namespace,
        "spec.nodeName": "localhost",
        "spec.serviceAccountName": node.pod.service_account_name or "default",
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    return values.get(path, "")


class LocalTask(Record, frozen=False):
    """A running child process and what has been read from it."""

    start: StartTask
    token: str
    """The attempt's protocol token (``$SHOAL_PROTOCOL_TOKEN`` in the child)."""
    capture_stdout: bool = False
    """The node's `captureStdout`: plain stdout becomes `outputs.result`."""
    collector: StreamCollector = field(init=False)
    process: Child | None = None
    kill_reason: str | None = None
    transient: list[Path] = field(default_factory=list)
    """Files written for this attempt alone (a large args file): removed when it ends."""
    error: Exception | None = None
    """What went wrong reading the child's output (then raised once the child is gone)."""

    def __post_init__(self) -> None:
        self.collector = StreamCollector(self.token, capture_stdout=self.capture_stdout)

    @property
    def key(self) -> tuple[str, int]:
        return (self.start.node, self.start.index)

    def abandon(self) -> None:
        """SIGKILL the group and stop waiting for its pipes: the last resort of a stop."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.close_pipes()

    def signal(self, signum: int) -> None:
        """Signal the child's whole process group, so no grandchild outlives the run."""
        if self.process is not None:
            self.process.signal(signum)

    def kill(self, reason: str, grace: float = KILL_GRACE_SECONDS) -> None:
        """SIGTERM now, SIGKILL if it still runs `grace` seconds later: the same sequence as
        a pod deletion (a timer of the run's reactor, not a task)."""
        if self.kill_reason is None:
            self.kill_reason = reason
        self.signal(signal.SIGTERM)
        child = self.process
        if child is None or child.returncode is not None:
            return
        child.watch()  # its exit is known at once, pipes open or not
        current().call_later(grace, self._kill_if_running)

    def _kill_if_running(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.signal(signal.SIGKILL)


OnOutcome = Callable[[Outcome], None]


def launch(
    task: LocalTask,
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    on_message: OnMessage,
    log: AttemptLog,
    on_outcome: OnOutcome,
) -> Outcome | None:
    """Start the child at once (not a loop turn later); None, or the outcome of an attempt
    that could not start. A started attempt's outcome goes to `on_outcome`, from the event
    loop, as soon as the child has exited and its output is read: no task per child."""
    stdout = _Reader(task, True, log, on_message)
    stderr = _Reader(task, False, log, on_message)
    termination = env["SHOAL_TERMINATION_MESSAGE_PATH"]
    ending = _Ending(task, termination, log, on_outcome)
    try:
        task.process = spawn(argv, env, cwd, stdout.feed, stderr.feed, ending.changed)
    except OSError as err:
        log.end(f"could not start: {err.strerror}")
        _termination_message(termination, task)  # cleans up
        return Outcome(False, None, {}, f"cannot start {argv[0]!r}: {err.strerror}")
    return None


class _Ending:
    """Turns a launched child's exit and drained pipes into its outcome, once.

    Output still buffered in the pipes arrives right after the exit; a grandchild that
    keeps the pipes open must not hold the run hostage, so after the exit they have
    `PIPE_DRAIN_SECONDS` (a timer armed only then, not per child) before the group is
    killed and the pipes given up.
    """

    __slots__ = ("_deliver", "_log", "_task", "_termination", "_timer")

    def __init__(self, task: LocalTask, termination: str, log: AttemptLog, deliver: OnOutcome):
        self._task = task
        self._termination = termination
        self._log = log
        self._deliver = deliver
        self._timer: Handle | None = None

    def changed(self) -> None:
        """The child exited or its pipes ended (`Child`'s `on_change`)."""
        child = self._task.process
        if child is None or child.returncode is None:
            return  # pipes ended first: the exit follows
        if not child.is_drained:
            if self._timer is None:
                self._timer = current().call_later(PIPE_DRAIN_SECONDS, self._overdue)
            return
        if self._timer is not None:
            self._timer.cancel()
        try:
            outcome = self._outcome(child.returncode)
        except Exception as err:  # never let one child's error hang the run
            outcome = Outcome(False, None, {}, f"local executor error: {err!r}")
        self._deliver(outcome)

    def _overdue(self) -> None:
        child = self._task.process
        assert child is not None
        self._log.write(f"[shoal] output still open {PIPE_DRAIN_SECONDS:g}s after the exit\n")
        child.signal(signal.SIGKILL, group_outlives=True)  # who holds the pipes
        child.close_pipes()  # drained: `changed` settles the attempt

    def _outcome(self, exit_code: int) -> Outcome:
        task = self._task
        if task.process is not None:
            task.process.close()
        if task.error is not None:
            raise task.error
        self._log.end(f"exited {exit_code}")
        text = _termination_message(self._termination, task)
        # A signal shows up as a negative return code; report it the way a pod would (128+n).
        code = 128 - exit_code if exit_code < 0 else exit_code
        return task.collector.finish(code, text, killed_reason=task.kill_reason)


def _termination_message(path: str, task: LocalTask) -> str | None:
    """The attempt's termination message, when the stream's result lacks; the file is removed
    once the attempt is over, so a long fan-out leaves no file per item behind.

    At most 4 KiB from local disk: not worth a thread hop. Plain os calls: most commands
    never write it, and this runs once per item.
    """
    text = None
    try:
        if task.collector.result is None:  # the stream's result, when there is one, has it all
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                data = os.read(fd, TERMINATION_READ_BYTES)
            finally:
                os.close(fd)
            text = data.decode("utf-8", errors="replace") or None
        os.unlink(path)
    except OSError:  # never written (most commands): nothing to read or remove
        pass
    for transient in task.transient:
        with contextlib.suppress(OSError):
            transient.unlink()
    return text


class _Reader:
    """One of the child's pipes, fed chunk by chunk from the event loop: each line is
    parsed (stdout) or kept as stderr, redacted, logged and reported."""

    __slots__ = ("_cutter", "_log", "_on_message", "_parse", "_task")

    def __init__(self, task: LocalTask, parse: bool, log: AttemptLog, on_message: OnMessage):
        self._task = task
        self._parse = parse
        self._log = log
        self._on_message = on_message
        self._cutter = LineCutter(MAX_LINE_BYTES)

    def feed(self, chunk: bytes) -> None:
        """A chunk read from the pipe; `b""` at its end. Never raises: a failure is kept
        on the task (the pipe is still drained, so the child never blocks on it)."""
        if self._task.error is not None:
            return
        lines = self._cutter.feed(chunk) if chunk else self._cutter.finish()
        try:
            for data, cut in lines:
                self._line(data, cut)
        except Exception as err:  # raised by `finish`, once the child is gone
            self._task.error = err

    def _line(self, data: bytes, cut: bool) -> None:
        task, log = self._task, self._log
        line = data.decode("utf-8", errors="replace")
        msg: Message
        if cut:
            text = line + CUT_NOTE.format(limit=MAX_LINE_BYTES)
            problem = f"line longer than {MAX_LINE_BYTES} bytes: cut, the rest dropped"
            msg = task.collector.violation(text, problem)
            log.write(msg.text + "\n")
        elif self._parse:
            msg = task.collector.feed(line)
            log.write(task.collector.redact(line))
            if isinstance(msg, ErrorMessage) and msg.traceback:
                # The protocol line holds it as escaped JSON: the log gets it readable too.
                for text in msg.traceback.rstrip("\n").split("\n"):
                    log.write(task.collector.redact(text) + "\n")
        else:
            # stderr is never protocol; it only joins the tail kept for messages.
            clean = task.collector.redact(line)
            msg = PlainLine(clean.rstrip("\n"))
            task.collector.feed(" " + clean if clean.startswith("@shoal/") else clean, stdout=False)
            log.write(clean)
        self._on_message(task.start.node, task.start.index, msg)
