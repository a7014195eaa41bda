"""`shoal run`'s live view on a terminal (local/reporting.LiveReporter): its table is
redrawn by a timer of the run's event loop, with no thread of its own (a second thread
would make children in another directory start through Popen), and the final table is
printed at the end."""

from __future__ import annotations

import asyncio
import io
import threading
import time

from rich.console import Console

from shoal.api.workflow import WorkflowSpec
from shoal.core.compiled import WorkflowMeta
from shoal.core.state import RunState
from shoal.core.validation import compile_workflow
from shoal.local import reporting
from shoal.local.reporting import LiveReporter

META = WorkflowMeta(name="wf", namespace="ns", uid="u-1")


def test_the_live_table_is_redrawn_from_the_loop_without_a_thread() -> None:
    spec = {"nodes": [{"name": "first-node", "command": ["true"]}]}
    wf = compile_workflow(WorkflowSpec.model_validate(spec), META)
    state = RunState.new(list(wf.order))
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)

    async def scenario() -> tuple[int, int]:
        threads = threading.active_count()
        reporter = LiveReporter(console)
        reporter.begin(wf, state)
        during = threading.active_count()
        drawn = out.getvalue().count("first-node")
        deadline = time.monotonic() + 30
        while out.getvalue().count("first-node") <= drawn + 1:  # two redraws by the timer
            assert time.monotonic() < deadline, "the live table was not redrawn"
            await asyncio.sleep(reporting.LIVE_REDRAW_SECONDS / 4)
        reporter.end(wf, state)
        return threads, during

    threads, during = asyncio.run(scenario())
    assert during == threads
    assert "workflow wf" in out.getvalue()
