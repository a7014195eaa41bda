"""The SDK's templates run locally: `run_local(templates=...)` runs the same `shoal run`
the YAML example gets, with the templates in the manifest file it writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_sdk_templates import greeting, greetings

pytestmark = pytest.mark.local


def test_a_workflow_using_a_template_runs_locally_from_code(tmp_path: Path) -> None:
    template = greeting()
    result = greetings(template).run_local(templates=[template], workdir=tmp_path)
    assert result.succeeded, result.status
    nodes = result.status["nodes"]
    assert nodes["team-shout"]["outputs"] == {"result": "HELLO, SHOAL!"}
    assert nodes["summary"]["outputs"] == {"result": "HELLO, SHOAL! / hello, ada."}
