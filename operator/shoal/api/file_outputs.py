"""`outputs: {name: {path: ...}}` on a command node: outputs read from files it wrote.

Apart from `api/workflow.py` so the Node model gains one field and one check; the
worker's `shoal-worker exec` reads the files (docs/workflows.md, "Outputs from files").
"""

from __future__ import annotations

from pydantic import Field

from shoal.api.common import ApiModel
from shoal.api.limits import MAX_STRING_LENGTH
from shoal.api.node_rules import OUTPUT_NAME, file_output_problem  # re-exported; one owner

__all__ = ["OUTPUT_NAME", "OutputFile", "file_output_problem"]


class OutputFile(ApiModel):
    """One output taken from a file the command wrote (Argo's `valueFrom.path`)."""

    path: str = Field(min_length=2, max_length=MAX_STRING_LENGTH, pattern=r"^/[^\x00]*$")
    """Absolute path of the file in the node's container; read once the command exited 0,
    its UTF-8 text (less one trailing newline) becomes the output."""
