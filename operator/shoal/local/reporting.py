"""What `shoal run` shows while it works: a live table on a terminal, plain lines otherwise.

Both reporters see the same calls (decisions, protocol messages, ends of attempts), so
the plain output that CI logs capture says the same things as the live view.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shoal.api.workflow import NodePhase, WorkflowPhase
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
from shoal_worker.protocol import (
    ErrorMessage,
    LogMessage,
    Message,
    OutputMessage,
    PlainLine,
    ProgressMessage,
    ProtocolViolation,
    ResultMessage,
)

PHASE_STYLE = {
    NodePhase.PENDING: "dim",
    NodePhase.RUNNING: "cyan",
    NodePhase.SUCCEEDED: "green",
    NodePhase.FAILED: "red",
    NodePhase.SKIPPED: "yellow",
    NodePhase.OMITTED: "magenta",
}
WORKFLOW_STYLE = {
    WorkflowPhase.SUCCEEDED: "bold green",
    WorkflowPhase.FAILED: "bold red",
    WorkflowPhase.STOPPED: "bold magenta",
}


class Reporter(Protocol):
    """Receives everything worth showing about a run."""

    def begin(self, wf: CompiledWorkflow, state: RunState) -> None: ...
    def decision(self, d: Decision, state: RunState) -> None: ...
    def message(self, node: str, index: int | None, msg: Message) -> None: ...
    def task_finished(self, event: TaskFinished, state: RunState) -> None: ...
    def end(self, wf: CompiledWorkflow, state: RunState) -> None: ...


def short_json(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _who(node: str, index: int | None) -> str:
    return node if index is None else f"{node}[{index}]"


def _duration(ns: NodeState, now: float) -> str:
    if ns.started_at is None:
        return ""
    return f"{(ns.finished_at or now) - ns.started_at:.1f}s"


def _items(ns: NodeState) -> str:
    if not ns.fan_out:
        return f"{ns.progress:.0f}%" if ns.progress is not None and not ns.phase.finished else ""
    return f"{ns.succeeded + ns.failed}/{ns.total}" + (
        f" ({ns.failed} failed)" if ns.failed else ""
    )


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
    if isinstance(msg, ErrorMessage):
        return f"ERROR {_shown(msg.message)}"
    if isinstance(msg, ProtocolViolation):
        return f"{_shown(msg.text)}  (protocol: {msg.problem})"
    return None


class PlainReporter:
    """One line per event; what CI logs and pipes get."""

    def __init__(self, out: TextIO, *, show_logs: bool = True) -> None:
        self.console = Console(file=out, highlight=False, soft_wrap=True, no_color=True)
        self.show_logs = show_logs
        self.t0 = time.time()

    def _say(self, text: str) -> None:
        self.console.print(f"{time.time() - self.t0:7.2f}s  {text}", markup=False)

    def begin(self, wf: CompiledWorkflow, state: RunState) -> None:
        self._say(f"workflow {wf.meta.name}: {len(wf.order)} nodes")

    def decision(self, d: Decision, state: RunState) -> None:
        if isinstance(d, ExpandNode) and d.items is not None:
            self._say(f"{d.node}: fan-out over {len(d.items)} items")
        elif isinstance(d, StartTask):
            if state.nodes[d.node].items is None or d.attempt > 1:
                who = _who(d.node, d.index if state.nodes[d.node].items is not None else None)
                self._say(f"{who}: started" + (f" (attempt {d.attempt})" if d.attempt > 1 else ""))
        elif isinstance(d, RetryTask):
            task = state.nodes[d.node].tasks[d.index]
            who = _who(d.node, d.index if state.nodes[d.node].fan_out else None)
            wait = max(d.at - time.time(), 0)
            self._say(f"{who}: attempt {task.attempt} failed: {task.message}; retry in {wait:.1f}s")
        elif isinstance(d, KillTask):
            self._say(f"{_who(d.node, d.index)}: stopping: {d.reason}")
        elif isinstance(d, FailTask) and state.nodes[d.node].fan_out:
            self._say(f"{d.node}[{d.index}]: failed: {d.message}")
        elif isinstance(d, FinishNode):
            self._say(self._node_line(d, state.nodes[d.node]))
        elif isinstance(d, BeginShutdown):
            self._say(f"shutting down: {d.reason}")
        elif isinstance(d, FinishWorkflow):
            pass

    def _node_line(self, d: FinishNode, ns: NodeState) -> str:
        line = f"{d.node}: {d.phase.value}"
        if ns.fan_out:
            line += f" ({_items(ns)} items)"
        if ns.started_at is not None:
            line += f" in {_duration(ns, time.time())}"
        if d.message:
            line += f": {d.message}"
        if d.phase is NodePhase.SUCCEEDED and d.outputs:
            line += f"  outputs={short_json(d.outputs)}"
        return line

    def message(self, node: str, index: int | None, msg: Message) -> None:
        if isinstance(msg, ProgressMessage | OutputMessage | ResultMessage):
            return
        text = _log_text(msg)
        if self.show_logs and text is not None:
            self._say(f"{_who(node, index)} | {text}")

    def task_finished(self, event: TaskFinished, state: RunState) -> None:
        return

    def end(self, wf: CompiledWorkflow, state: RunState) -> None:
        render_summary(self.console, wf, state)


class LiveReporter(PlainReporter):
    """A live node table on a terminal; job logs and events scroll above it."""

    def __init__(self, console: Console, *, show_logs: bool = True) -> None:
        self.console = console
        self.show_logs = show_logs
        self.t0 = time.time()
        self._wf: CompiledWorkflow | None = None
        self._state: RunState | None = None
        self._live = Live(console=console, refresh_per_second=8, transient=True)
        self._live.get_renderable = self._table  # type: ignore[method-assign]

    def _say(self, text: str) -> None:
        self._live.console.print(Text(f"{time.time() - self.t0:7.2f}s  ", style="dim") + Text(text))

    def _table(self) -> Group:
        if self._wf is None or self._state is None:
            return Group()
        return Group(node_table(self._wf, self._state, live=True))

    def begin(self, wf: CompiledWorkflow, state: RunState) -> None:
        self._wf, self._state = wf, state
        self._live.start()
        super().begin(wf, state)

    def end(self, wf: CompiledWorkflow, state: RunState) -> None:
        self._live.stop()
        render_summary(self.console, wf, state)


def node_table(wf: CompiledWorkflow, state: RunState, *, live: bool = False) -> Table:
    """The per-node table shown live and in the final summary."""
    now = time.time()
    title = f"{wf.meta.name}  {state.phase.value}  {state.progress}"
    table = Table(title=title if live else None, expand=False, show_edge=False)
    for column in ("node", "phase", "items/progress", "attempts", "time", "message"):
        table.add_column(column, overflow="fold")
    for name in wf.order:
        ns = state.nodes[name]
        style = PHASE_STYLE[ns.phase]
        table.add_row(
            name,
            Text(ns.phase.value, style=style),
            _items(ns),
            str(ns.attempts) if ns.attempts else "",
            _duration(ns, now),
            escape(ns.message[:200]),
        )
    return table


def render_summary(console: Console, wf: CompiledWorkflow, state: RunState) -> None:
    """The final table, the outputs of every node that has some, and the verdict."""
    console.print(node_table(wf, state))
    outputs = {n: state.nodes[n].outputs for n in wf.order if state.nodes[n].outputs}
    if outputs:
        console.print("outputs:", style="bold")
        for name, values in outputs.items():
            console.print(f"  {name}: {short_json(values, 400)}", markup=False)
    elapsed = (state.finished_at or time.time()) - (state.started_at or time.time())
    verdict = f"workflow {wf.meta.name} {state.phase.value} in {elapsed:.1f}s"
    if state.message:
        verdict += f": {state.message}"
    console.print(Text(verdict, style=WORKFLOW_STYLE.get(state.phase, "bold")))
