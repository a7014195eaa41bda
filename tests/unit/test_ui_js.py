"""The dashboard's pure JavaScript logic (ranges, progress, durations, routes, protocol
lines, the graph and its layered layout), under node's own test runner.

The layout test imports the real `@dagrejs/dagre` that `make ui` puts in the package; the
browser tests (tests/cluster/test_ui.py) cover the DOM. Fails, not skips, under CI when
node or the built library is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from shoal.server.ui_static import ui_built
from tests.support.plugin import unavailable
from tests.support.procs import MissingPrerequisite

HERE = Path(__file__).resolve().parent


def test_ui_logic_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        unavailable("node", MissingPrerequisite("node is needed for the dashboard's JS tests"))
    if not ui_built():
        unavailable("the dashboard's layout library", MissingPrerequisite("run `make ui`"))
    done = subprocess.run(
        [node, "--test", str(HERE / "ui_js" / "logic.test.mjs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
    assert "# pass 6" in done.stdout
