"""Each example and its SDK twin make the same run: a local run of the YAML (`shoal run`)
and of the SDK's workflow (`run_local`) end with the same phase, node phases and outputs
(issue 19 item 4; the manifests are compared in tests/unit/test_sdk_examples.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import EXAMPLES, shoal_run
from tests.unit.test_sdk_examples import YAML_EXAMPLES, load_sdk_templates, load_sdk_workflow

pytestmark = pytest.mark.local

PARAMS: dict[str, dict[str, Any]] = {"coinflip.yaml": {"seed": "7"}}
"""Parameters that make a run repeatable (the coin's seed)."""


def comparable(value: Any) -> Any:
    """Outputs with each artifact reference's key left out: it names the run's uid."""
    if isinstance(value, dict):
        body = value.get("$artifact")
        if len(value) == 1 and isinstance(body, dict):
            return {"$artifact": {k: v for k, v in body.items() if k != "key"}}
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def run_view(status: dict[str, Any]) -> dict[str, Any]:
    nodes = status.get("nodes", {})
    return {
        "phase": status.get("phase"),
        "nodes": {
            name: (node.get("phase"), comparable(decided(node.get("outputs"))))
            for name, node in nodes.items()
        },
    }


def decided(outputs: Any) -> Any:
    """An approval gate's outputs without `at`, the moment it was decided (differs per run)."""
    if isinstance(outputs, dict) and {"approved", "at"} <= outputs.keys():
        return {k: v for k, v in outputs.items() if k != "at"}
    return outputs


@pytest.mark.parametrize("name", YAML_EXAMPLES)
def test_the_sdk_twin_runs_like_the_yaml(name: str, tmp_path: Path) -> None:
    params = PARAMS.get(name, {})
    options = [arg for k, v in params.items() for arg in ("-p", f"{k}={v}")]
    from_yaml = shoal_run(EXAMPLES / name, *options)
    assert from_yaml.status, from_yaml.stderr
    from_sdk = load_sdk_workflow(name).run_local(
        params, workdir=tmp_path, templates=load_sdk_templates(name)
    )
    assert from_sdk.status, from_sdk
    assert run_view(from_sdk.status) == run_view(from_yaml.status)
    assert from_sdk.exit_code == from_yaml.code
