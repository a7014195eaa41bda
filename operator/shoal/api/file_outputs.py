"""`outputs: {name: {path: ...}}` on a command node: outputs read from files it wrote.

Apart from `api/workflow.py` so the Node model gains one field and one check; the
worker's `shoal-worker exec` reads the files (docs/workflows.md, "Outputs from files").
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field

from shoal.api.common import ApiModel
from shoal.api.limits import MAX_STRING_LENGTH

if TYPE_CHECKING:
    from shoal.api.workflow import Node

__all__ = ["OUTPUT_NAME", "OutputFile", "file_output_problem"]

OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
"""An output name reads as `nodes.<node>.outputs.<name>` in an expression."""


class OutputFile(ApiModel):
    """One output taken from a file the command wrote (Argo's `valueFrom.path`)."""

    path: str = Field(min_length=2, max_length=MAX_STRING_LENGTH, pattern=r"^/[^\x00]*$")
    """Absolute path of the file in the node's container; read once the command exited 0,
    its UTF-8 text (less one trailing newline) becomes the output."""


def file_output_problem(node: Node) -> str | None:
    """Why `node.outputs` cannot be honoured, or None."""
    if not node.outputs:
        return None
    if node.command is None:
        kind = "a `job` reports outputs itself" if node.job is not None else "set `command`"
        return f"`outputs` read files a `command` writes; {kind}"
    bad = sorted(name for name in node.outputs if not OUTPUT_NAME.match(name))
    if bad:
        return (
            f"output name {bad[0]!r} must be letters, digits and `_` (not starting with a "
            "digit), so that an expression can read it as outputs.<name>"
        )
    if node.capture_stdout and "result" in node.outputs:
        return "`result` is the captured stdout (`captureStdout`); name the file output otherwise"
    return None
