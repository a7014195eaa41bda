"""`shoal run` prints the same whether the fast path (no pydantic) or the models ran it.

Each example the fast path takes (`shoal.fast_run`) is run twice as a real `shoal run`
process: as users run it, and with the fast path turned off so the models' path runs it
as before. Exit code, the `-o json` status and every line printed must be the same, up
to what differs between any two runs: timings, the work directory, the run's uid in
artifact keys, and the order in which concurrent nodes report. Each run also says which
path it took, so a fast path that silently declined everything would fail here.
The compiled workflows are compared field by field in tests/unit/test_fast_run.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.local.conftest import EXAMPLES, REPO, RUN_TIMEOUT

pytestmark = pytest.mark.local

WRAPPER = """
import json, os, sys
import shoal.cli.local_commands as local_commands
from shoal.cli.main import main

fast_path = local_commands.compile_for_run
taken = []

def compile_for_run(args, params):
    wf = None if os.environ["SHOAL_TEST_PATH"] == "models" else fast_path(args, params)
    taken.append(wf is not None)
    return wf

local_commands.compile_for_run = compile_for_run
try:
    code = main(sys.argv[1:])
finally:
    report = {"fast": taken, "pydantic": "pydantic" in sys.modules}
    with open(os.environ["SHOAL_TEST_REPORT"], "w") as out:
        json.dump(report, out)
sys.exit(code)
"""
FAST_EXAMPLES = [
    "artifacts.yaml",
    "catalog.yaml",
    "coinflip.yaml",
    "dag-diamond.yaml",
    "diamond.yaml",
    "exit-handlers.yaml",
    "failing.yaml",
    "hello.yaml",
    "loops-param-result.yaml",
    "output-parameter.yaml",
    "retry.yaml",
    "sequence.yaml",
    "shell.yaml",
]
"""Every example but those needing the models (gates, memos, locks, templates, a child)
and retry-backoff (the same path as retry.yaml, with a minute of waiting)."""
PARAMS = {"coinflip.yaml": ["-p", "seed=7"]}
TIMES = re.compile(r"\d+(\.\d+)?(ms|s)\b")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RULE = re.compile(r"([━─═-])\1+")
TIMED_FIELDS = {"startedAt", "finishedAt", "durationSeconds", "duration"}


def run(path: str, manifest: Path, work: Path, *options: str) -> dict[str, Any]:
    """`shoal run` through the wrapper; what it printed, its code and which path it took."""
    report = work.with_suffix(".json")
    env = {**os.environ, "SHOAL_TEST_PATH": path, "SHOAL_TEST_REPORT": str(report)}
    argv = ["run", "--plain", "--import", "jobs", "--workdir", str(work), *options]
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv, *PARAMS.get(manifest.name, []), str(manifest)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=REPO,
        env=env,
        check=False,
    )
    taken = json.loads(report.read_text())
    return {"code": done.returncode, "out": done.stdout, "err": done.stderr, **taken}


def lines(text: str, work: Path) -> list[str]:
    """The lines without what differs from run to run, sorted: concurrent nodes report in
    the order they happen to end. A time's width (`9.9s`, `10.1s`) sets its padding and
    the width of the table's rules, so runs of spaces and of rule characters count as one."""
    text = RULE.sub(r"\1", text.replace(str(work), "WORKDIR"))
    return sorted(
        " ".join(UUID.sub("UID", TIMES.sub("T", line)).split()) for line in text.splitlines()
    )


def untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMED_FIELDS}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    if isinstance(value, str):
        return UUID.sub("UID", value)
    return value


def compared(found: dict[str, Any], work: Path, json_output: bool) -> dict[str, Any]:
    out = untimed(json.loads(found["out"])) if json_output else lines(found["out"], work)
    return {"code": found["code"], "out": out, "err": lines(found["err"], work)}


@pytest.mark.parametrize("name", FAST_EXAMPLES)
def test_json_status_and_progress_are_the_same_on_both_paths(name: str, tmp_path: Path) -> None:
    manifest = EXAMPLES / name
    fast = run("fast", manifest, tmp_path / "fast", "-o", "json")
    models = run("models", manifest, tmp_path / "models", "-o", "json")
    assert fast["fast"] == [True], fast["err"]
    assert models["fast"] == [False]
    assert compared(fast, tmp_path / "fast", True) == compared(models, tmp_path / "models", True)


@pytest.mark.parametrize("name", ["hello.yaml", "failing.yaml", "shell.yaml"])
def test_the_plain_table_and_logs_are_the_same_on_both_paths(name: str, tmp_path: Path) -> None:
    manifest = EXAMPLES / name
    fast = run("fast", manifest, tmp_path / "fast")
    models = run("models", manifest, tmp_path / "models")
    assert fast["fast"] == [True], fast["err"]
    assert not fast["pydantic"]  # the plain output needs no model at all
    assert models["pydantic"]
    assert compared(fast, tmp_path / "fast", False) == compared(models, tmp_path / "models", False)
    assert fast["out"].count("\n") > 5  # a table and its logs, not an early error


def test_an_invalid_file_gets_the_models_exact_error(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: bad}\n"
        "spec:\n  parameters: {flag: yes}\n  nodes:\n"
        "    - {name: a, command: ['true'], dependsOn: [nowhere]}\n"
    )
    fast = run("fast", manifest, tmp_path / "fast")
    models = run("models", manifest, tmp_path / "models")
    assert fast["fast"] == [False]  # declined: the models word the error
    assert (fast["code"], fast["out"], fast["err"]) == (
        models["code"],
        models["out"],
        models["err"],
    )
    assert fast["code"] == 2
    assert "nowhere" in fast["err"]
    assert "value yes is read by kubectl" in fast["err"]
