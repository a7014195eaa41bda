"""`shoal run` with hostile expressions and input: a fast, clear failure, never a stall."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shoal.api import limits
from tests.local.conftest import shoal_run

pytestmark = pytest.mark.local

Manifest = Callable[..., Path]
HUNDRED = "[" + ",".join(str(i) for i in range(100)) + "]"


def nested_all(levels: int) -> str:
    text = "true"
    for var in "abcde"[:levels]:
        text = f"{HUNDRED}.all({var}, {text})"
    return text


def test_five_nested_all_in_when_fails_fast_naming_node_field_and_limit(
    manifest: Manifest, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "hostile-when"},
        "spec": {
            "nodes": [
                {"name": "first", "command": ["touch", str(marker)]},
                {
                    "name": "gate",
                    "job": "shoal.noop",
                    "dependsOn": ["first"],
                    "when": nested_all(5),
                },
            ]
        },
    }
    path = manifest(json.dumps(doc))
    started = time.monotonic()
    result = shoal_run(path, timeout=60)
    assert time.monotonic() - started < 30
    assert result.code == 2, result.stderr
    limit = limits.MAX_COMPREHENSION_NESTING
    assert re.search(
        rf"{re.escape(str(path))}:1:\d+: node 'gate': when: bad expression:", result.stderr
    )
    assert f"nest 5 deep (limit {limit})" in result.stderr
    assert not marker.exists()  # refused before anything ran


def test_an_expression_over_its_time_budget_fails_its_node_and_the_run_ends(
    manifest: Manifest,
) -> None:
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "slow-when"},
        "spec": {
            "parameters": {"xs": list(range(20000))},
            "nodes": [
                {"name": "first", "job": "shoal.noop"},
                {
                    "name": "gate",
                    "job": "shoal.noop",
                    "dependsOn": ["first"],
                    "when": "params.xs.all(a, params.xs.all(b, a + b >= 0))",
                },
                {"name": "other", "job": "shoal.noop", "dependsOn": ["first"]},
            ],
        },
    }
    path = manifest(json.dumps(doc))
    started = time.monotonic()
    result = shoal_run(path, timeout=90)
    assert time.monotonic() - started < 45  # minutes of CEL work without the budget
    assert result.code == 1, result.stderr
    gate = result.node("gate")
    assert gate["phase"] == "Failed"
    budget = limits.EXPRESSION_TIMEOUT_SECONDS
    assert gate["message"].startswith("when: ")
    assert f"exceeded the time budget of {budget:g}s" in gate["message"]
    assert result.node("other")["phase"] == "Succeeded"


def test_outputs_nested_past_the_limit_fail_the_node_not_the_run(
    manifest: Manifest, tmp_path: Path
) -> None:
    # jobs.py is what `--import jobs` loads; a job returning 500-deep outputs is appended.
    jobs = tmp_path / "jobs.py"
    jobs.write_text(
        jobs.read_text()
        + "\n\n@job('deep-outputs')\n"
        + "def deep_outputs(ctx: Context) -> dict[str, object]:\n"
        + "    value: object = 1\n"
        + "    for _ in range(500):\n"
        + "        value = [value]\n"
        + "    return {'deep': value}\n"
    )
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "deep-outputs"},
        "spec": {
            "nodes": [
                {"name": "deep", "job": "deep-outputs"},
                {"name": "other", "job": "shoal.noop"},
            ]
        },
    }
    result = shoal_run(manifest(json.dumps(doc)), timeout=60)
    assert result.code == 1, result.stderr
    limit = limits.MAX_DECODE_DEPTH
    deep = result.node("deep")
    assert deep["phase"] == "Failed"
    assert deep["message"] == f"outputs: nests deeper than {limit} levels (limit {limit})"
    assert deep["attempts"] == 1
    assert result.node("other")["phase"] == "Succeeded"
