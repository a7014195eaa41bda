"""The node table of `shoal run`, live and final, drawn with rich.

Only the reporters import this module, and only once they draw: `shoal --help` and the
other commands never load rich.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from shoal.api.enums import NodePhase, WorkflowPhase
from shoal.core.compiled import CompiledWorkflow
from shoal.core.state import NodeState, RunState
from shoal.local.failures import first_line
from shoal.local.plain_table import duration, items_text
from shoal.local.runview import (
    SHOWN_ITEMS,
    ItemProgress,
    NodeView,
    RunView,
    retries_text,
    short_json,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["live_view", "render_summary"]

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
BAR_WIDTH = 16
MESSAGE_CHARS = 120
ERROR_CHARS = 600
"""A failed node's error in the final table: long enough for a list of known job names."""


def _bar(fraction: float | None) -> RenderableType:
    if fraction is None:
        return Text("")
    return ProgressBar(total=1.0, completed=max(0.0, min(fraction, 1.0)), width=BAR_WIDTH)


def _node_fraction(ns: NodeState, view: NodeView) -> float | None:
    if ns.fan_out:
        return (ns.succeeded + ns.failed) / ns.total if ns.total else None
    progress = view.running.get(None)
    return progress.fraction if progress is not None else None


def _message(ns: NodeState, view: NodeView, run: RunView, live: bool) -> Text:
    """A running node's progress message; a failed one's error and failing frame."""
    if live and ns.phase is NodePhase.RUNNING and not ns.fan_out:
        progress = view.running.get(None)
        if progress is not None and progress.message:
            return Text(progress.message)
    if view.failure is not None and ns.phase is NodePhase.FAILED:
        limit = MESSAGE_CHARS if live else ERROR_CHARS
        text = Text(first_line(view.failure.error, limit), style="red")
        if view.failures > 1:
            text.append(f" (in {view.failures} attempts)")
        if view.failure.at:
            text.append(f"\nat {first_line(view.failure.at, limit)}", style="dim")
        return text
    return Text(first_line(run.mention(ns.message), MESSAGE_CHARS))


def _item_rows(view: NodeView) -> Iterator[tuple[str, ItemProgress]]:
    shown = sorted((i, p) for i, p in view.running.items() if i is not None)[:SHOWN_ITEMS]
    for index, progress in shown:
        yield f"  [{index}]", progress


def node_table(wf: CompiledWorkflow, state: RunState, run: RunView, *, live: bool) -> Table:
    """One row per node (and, live, one per running item that reports progress)."""
    now = time.time()
    title = f"{wf.meta.name}  {state.phase.value}  {state.progress}"
    table = Table(title=title if live else None, expand=False, show_edge=False)
    columns = ["node", "phase", "items", "retries", "time", "message"]
    if live:
        columns.insert(2, "progress")
    for column in columns:
        table.add_column(column, overflow="fold")
    for name in wf.order:
        ns, view = state.nodes[name], run.node(name)
        row: list[RenderableType] = [name, Text(ns.phase.value, style=PHASE_STYLE[ns.phase])]
        if live:
            row.append(_bar(_node_fraction(ns, view)))
        row += [
            items_text(ns, view),
            retries_text(view.retries),
            duration(ns, now),
            _message(ns, view, run, live),
        ]
        table.add_row(*row)
        if live and ns.phase is NodePhase.RUNNING:
            for label, progress in _item_rows(view):
                table.add_row(
                    Text(label, style="dim"),
                    "",
                    _bar(progress.fraction),
                    progress.label,
                    "",
                    "",
                    progress.message or "",
                )
    return table


def live_view(wf: CompiledWorkflow, state: RunState, run: RunView) -> Group:
    return Group(node_table(wf, state, run, live=True))


def render_summary(console: Console, wf: CompiledWorkflow, state: RunState, run: RunView) -> None:
    """The final table (each failed node's error once, with its frame), outputs, verdict."""
    console.print(node_table(wf, state, run, live=False))
    outputs = {n: state.nodes[n].outputs for n in wf.order if state.nodes[n].outputs}
    if outputs:
        console.print("outputs:", style="bold")
        for name, values in outputs.items():
            console.print(f"  {name}: {short_json(values, 400)}", markup=False)
    elapsed = (state.finished_at or time.time()) - (state.started_at or time.time())
    verdict = f"workflow {wf.meta.name} {state.phase.value} in {elapsed:.1f}s"
    if state.message:
        verdict += f": {first_line(run.mention(state.message))}"
    console.print(Text(verdict, style=WORKFLOW_STYLE.get(state.phase, "bold")))
