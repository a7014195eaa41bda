"""What `shoal run` shows while it works: a live table on a terminal, plain lines otherwise.

Both reporters see the same calls (decisions, protocol messages, ends of attempts), so
the plain output that CI logs capture says the same things as the live view. Each error
is printed once per node (a fan-out whose items all fail the same way says it once), a
Python failure with the frame that raised it. rich is imported only to draw the live
view: plain output is written as it is (local/plain_table.py draws its final table).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol, TextIO

from shoal.api.enums import NodePhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import (
    BeginShutdown,
    Decision,
    ExpandNode,
    FailTask,
    FinishNode,
    FinishWorkflow,
    KillTask,
    RetryTask,
    StartTask,
)
from shoal.core.state import NodeState, RunState, TaskFinished
from shoal.local.failures import Failure, failure_of, first_line
from shoal.local.plain_table import shown
from shoal.local.reactor import Handle, current
from shoal.local.runview import ItemProgress, RunView, retries_text, short_json
from shoal_worker.protocol import (
    ErrorMessage,
    LogMessage,
    Message,
    PlainLine,
    ProgressMessage,
    ProtocolViolation,
)

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.text import Text

__all__ = ["LiveReporter", "PlainReporter", "Reporter", "short_json"]

WORKER_ERROR_PREFIX = "shoal-worker: error: "
"""How the worker writes a usage error on stderr, before sending it as an error message."""


class Reporter(Protocol):
    """Receives everything worth showing about a run."""

    def begin(self, wf: CompiledWorkflow, state: RunState) -> None: ...
    def decision(self, d: Decision, state: RunState) -> None: ...
    def message(self, node: str, index: int | None, msg: Message) -> None: ...
    def task_finished(self, event: TaskFinished, state: RunState) -> None: ...
    def end(self, wf: CompiledWorkflow, state: RunState) -> None: ...


def _who(node: str, index: int | None) -> str:
    return node if index is None else f"{node}[{index}]"


SHOWN_LINE_CHARS = 4096
"""Longer log lines are shortened on screen (the attempt's log file keeps them): a
terminal that has to lay out a megabyte line would hold up the run."""


def _shown(text: str) -> str:
    if len(text) <= SHOWN_LINE_CHARS:
        return text
    return f"{text[:SHOWN_LINE_CHARS]}… [{len(text) - SHOWN_LINE_CHARS} more characters]"


def _log_text(msg: Message) -> str | None:
    if isinstance(msg, PlainLine):
        return _shown(msg.text)
    if isinstance(msg, LogMessage):
        text = _shown(msg.message)
        return text if msg.level == "info" else f"{msg.level.upper()} {text}"
    if isinstance(msg, ProtocolViolation):
        return f"{_shown(msg.text)}  (protocol: {msg.problem})"
    return None


def _error_of(msg: Message) -> Failure | None:
    """The failure a message reports: an error message, or the worker's usage error line."""
    if isinstance(msg, ErrorMessage):
        return failure_of(msg.message, msg.error_type, msg.traceback)
    if isinstance(msg, PlainLine) and msg.text.startswith(WORKER_ERROR_PREFIX):
        return Failure(first_line(msg.text.removeprefix(WORKER_ERROR_PREFIX)))
    return None


class PlainReporter:
    """One line per event; what CI logs and pipes get."""

    def __init__(self, out: TextIO, *, show_logs: bool = True) -> None:
        self.out = out
        self.show_logs = show_logs
        self.t0 = time.time()
        self.view = RunView()
        self.gates: set[str] = set()

    def _say(self, text: str) -> None:
        self.out.write(f"{time.time() - self.t0:7.2f}s  {shown(text)}\n")
        self.out.flush()

    def begin(self, wf: CompiledWorkflow, state: RunState) -> None:
        self._say(f"workflow {wf.meta.name}: {len(wf.order)} nodes")
        self.gates = {n for n, node in wf.nodes.items() if node.spec.suspend is not None}

    def decision(self, d: Decision, state: RunState) -> None:
        if isinstance(d, ExpandNode) and d.items is not None:
            self._say(f"{d.node}: fan-out over {len(d.items)} items")
        elif isinstance(d, ExpandNode) and d.node in self.gates:
            self._say(f"{d.node}: waiting for approval (shoal resume --local)")
        elif isinstance(d, StartTask):
            self.view.started(d.node, d.attempt)
            if state.nodes[d.node].items is None or d.attempt > 1:
                who = _who(d.node, d.index if state.nodes[d.node].items is not None else None)
                self._say(f"{who}: started" + (f" (attempt {d.attempt})" if d.attempt > 1 else ""))
        elif isinstance(d, RetryTask):
            task = state.nodes[d.node].tasks[d.index]
            who = _who(d.node, d.index if state.nodes[d.node].fan_out else None)
            wait = max(d.at - time.time(), 0)
            error = self._once(d.node, task.message)
            self._say(f"{who}: attempt {task.attempt} failed: {error}; retry in {wait:.1f}s")
        elif isinstance(d, KillTask):
            self._say(f"{_who(d.node, d.index)}: stopping: {d.reason}")
        elif isinstance(d, FailTask) and state.nodes[d.node].fan_out:
            self._item_failed(d)
        elif isinstance(d, FinishNode):
            self._say(self._node_line(d, state.nodes[d.node]))
        elif isinstance(d, BeginShutdown):
            self._say(f"shutting down: {d.reason}")
        elif isinstance(d, FinishWorkflow):
            pass

    def _item_failed(self, d: FailTask) -> None:
        """The first failed item of a node is told, then only items that fail differently."""
        view = self.view.node(d.node)
        told = view.failed_items_told
        if self.view.fresh(d.node, d.message) or not told:
            view.failed_items_told = True
            self._say(f"{d.node}[{d.index}]: failed: {first_line(self.view.mention(d.message))}")
        else:
            view.repeats += 1

    def _once(self, node: str, message: str) -> str:
        """An error's first line the first time, else a pointer to where it was printed."""
        if self.view.fresh(node, message):
            return first_line(message)
        return first_line(self.view.mention(message))

    def _node_line(self, d: FinishNode, ns: NodeState) -> str:
        from shoal.local.plain_table import duration, items_text

        line = f"{d.node}: {d.phase.value}"
        view = self.view.node(d.node)
        if ns.fan_out:
            line += f" ({items_text(ns, view)} items)"
        if view.retries:
            line += f" after {retries_text(view.retries)}"
        if ns.started_at is not None:
            line += f" in {duration(ns, time.time())}"
        if d.message and d.phase is NodePhase.FAILED:
            line += f": {self._once(d.node, d.message)}"
        elif d.message:
            line += f": {first_line(d.message)}"
        if view.repeats:
            line += f" ({view.repeats} more items failed the same way)"
        if d.phase is NodePhase.SUCCEEDED and d.outputs:
            line += f"  outputs={short_json(d.outputs)}"
        return line

    def message(self, node: str, index: int | None, msg: Message) -> None:
        if isinstance(msg, ProgressMessage):
            progress = ItemProgress.of(msg.percent, msg.message, msg.current, msg.total)
            self.view.progress(node, index, progress)
            return
        failure = _error_of(msg)
        if failure is not None:
            if isinstance(msg, ErrorMessage):
                self.view.failed(node, failure)
            if self.view.fresh(node, failure.error):
                for i, line in enumerate(failure.lines()):
                    self._say(f"{_who(node, index)} | {'ERROR ' if i == 0 else '  '}{line}")
            return
        text = _log_text(msg)
        if self.show_logs and text is not None:
            self._say(f"{_who(node, index)} | {text}")

    def task_finished(self, event: TaskFinished, state: RunState) -> None:
        fan_out = state.nodes[event.node].fan_out
        self.view.ended(event.node, event.index if fan_out else None)

    def end(self, wf: CompiledWorkflow, state: RunState) -> None:
        from shoal.local.plain_table import render_plain_summary

        render_plain_summary(self.out, wf, state, self.view)


LIVE_REDRAW_SECONDS = 1 / 8
"""The live table is rebuilt and redrawn at most this often, from the run's event loop."""


class LiveReporter(PlainReporter):
    """A live node table with progress bars on a terminal; logs and events scroll above it.

    The table is redrawn by a timer of the run's own event loop, not by rich's refresh
    thread: a second thread would make every child in another directory start through
    Popen (local/spawn.py), and the table, rebuilt at most every `LIVE_REDRAW_SECONDS`,
    is not rebuilt again for each line printed above it.
    """

    def __init__(self, console: Console, *, show_logs: bool = True) -> None:
        from rich.live import Live

        self.console = console
        self.show_logs = show_logs
        self.t0 = time.time()
        self.view = RunView()
        self._wf: CompiledWorkflow | None = None
        self._state: RunState | None = None
        self._live = Live(console=console, auto_refresh=False, transient=True)
        self._live.get_renderable = self._table  # type: ignore[method-assign]
        self._built: tuple[float, Group] | None = None
        self._timer: Handle | None = None

    def _say(self, text: str) -> None:
        self._live.console.print(_stamp(time.time() - self.t0, text))

    def _table(self) -> Group:
        from rich.console import Group

        from shoal.local.tables import live_view

        if self._wf is None or self._state is None:
            return Group()
        now = time.monotonic()
        if self._built is None or now - self._built[0] >= LIVE_REDRAW_SECONDS:
            self._built = (now, live_view(self._wf, self._state, self.view))
        return self._built[1]

    def _redraw(self) -> None:
        self._live.refresh()
        self._timer = current().call_later(LIVE_REDRAW_SECONDS, self._redraw)

    def begin(self, wf: CompiledWorkflow, state: RunState) -> None:
        self._wf, self._state = wf, state
        self._live.start()
        super().begin(wf, state)
        self._redraw()

    def end(self, wf: CompiledWorkflow, state: RunState) -> None:
        from shoal.local.tables import render_summary

        if self._timer is not None:
            self._timer.cancel()
        self._built = None
        self._live.stop()
        render_summary(self.console, wf, state, self.view)


def _stamp(elapsed: float, text: str) -> Text:
    from rich.text import Text

    return Text(f"{elapsed:7.2f}s  ", style="dim") + Text(text)
