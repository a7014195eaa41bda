"""Every CronWorkflow example in docs/cron.md is a valid CronWorkflow."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoal.api.cron import CronWorkflow
from shoal.core.validation import InvalidWorkflow
from shoal.manifests import Manifest, compile_manifest

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


def test_examples_validate_like_shoal_validate() -> None:
    """Including the workflowSpecs that read what poll and after pass (`params.pollBody`)."""
    for doc in examples():
        manifest = Manifest(CronWorkflow.model_validate(doc), str(DOC))
        compile_manifest(manifest)


def test_a_trigger_parameter_is_declared_only_with_its_trigger() -> None:
    doc = next(d for d in examples() if d["metadata"]["name"] == "heartbeat")
    doc["spec"]["workflowSpec"]["nodes"][0]["args"] = {"body": "${{ params.pollBody }}"}
    with pytest.raises(InvalidWorkflow, match=r"params\.pollBody, which is not declared"):
        compile_manifest(Manifest(CronWorkflow.model_validate(doc), str(DOC)))
