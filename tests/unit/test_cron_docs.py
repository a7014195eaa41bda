"""Every CronWorkflow example in docs/cron.md is a valid CronWorkflow."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from shoal.api.cron import CronWorkflow

DOC = Path(__file__).resolve().parents[2] / "docs" / "cron.md"


def examples() -> list[dict[str, Any]]:
    """The YAML blocks of docs/cron.md, parsed."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.DOTALL)
    return [yaml.safe_load(block) for block in blocks]


def test_examples_are_valid_cron_workflows() -> None:
    docs = examples()
    assert len(docs) >= 3
    for doc in docs:
        CronWorkflow.model_validate(doc)
