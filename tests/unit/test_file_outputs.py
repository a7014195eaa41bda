"""Outputs read from files a command node wrote (`outputs: {name: {path: ...}}`, issue 19):
the model's checks, the wrapped command line both executors run, and `shoal-worker exec`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shoal.api.limits import MAX_OUTPUT_FILE_BYTES
from shoal.api.workflow import Node
from shoal.core.file_outputs import POD_WORKER, wrap
from shoal_worker.file_outputs import parse_exec, read_output
from shoal_worker.protocol import TOKEN_ENV, ResultMessage, parse_line
from tests.unit.test_kube_jobs import container, job_for

TOKEN = "f1l3t0k3n"


def node(**fields: Any) -> Node:
    return Node.model_validate({"name": "gen", **fields})


def test_outputs_are_read_after_a_command_wrapped_by_the_worker() -> None:
    spec = node(command=["sh", "-c", "echo hi > /tmp/o"], outputs={"msg": {"path": "/tmp/o"}})
    argv = wrap(spec, ["sh", "-c", "echo hi > /tmp/o"], POD_WORKER)
    assert argv == [
        "shoal-worker",
        "exec",
        "--max-bytes",
        str(MAX_OUTPUT_FILE_BYTES),
        "--output",
        "msg=/tmp/o",
        "--",
        "sh",
        "-c",
        "echo hi > /tmp/o",
    ]
    parsed = parse_exec(argv[2:])
    assert parsed.outputs == [("msg", "/tmp/o")]
    assert parsed.command == ["sh", "-c", "echo hi > /tmp/o"]


def test_a_command_without_file_outputs_runs_as_it_is() -> None:
    assert wrap(node(command=["echo"]), ["echo", "x"], POD_WORKER) == ["echo", "x"]


def test_the_pod_runs_the_wrapped_command_with_its_rendered_args() -> None:
    spec = {
        "parameters": {"who": "Ada"},
        "nodes": [
            {
                "name": "a",
                "command": ["sh", "-c", "echo $0 > /tmp/o"],
                "args": ["${{ params.who }}"],
                "outputs": {"msg": {"path": "/tmp/o"}},
            }
        ],
    }
    main = container(job_for(spec))
    assert main["command"][:2] == ["shoal-worker", "exec"]
    assert main["command"][-5:] == ["--", "sh", "-c", "echo $0 > /tmp/o", "Ada"]
    assert "args" not in main


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"job": "x", "outputs": {"a": {"path": "/tmp/a"}}}, "a `job` reports outputs itself"),
        ({"image": "alpine", "outputs": {"a": {"path": "/tmp/a"}}}, "set `command`"),
        ({"command": ["true"], "outputs": {"a-b": {"path": "/tmp/a"}}}, "output name 'a-b'"),
        ({"command": ["true"], "outputs": {"a": {"path": "tmp/a"}}}, "pattern"),
        (
            {"command": ["true"], "captureStdout": True, "outputs": {"result": {"path": "/t"}}},
            "`result` is the captured stdout",
        ),
    ],
)
def test_outputs_that_cannot_be_honoured_are_refused(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        node(**fields)


def test_a_file_is_read_less_one_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("line 1\nline 2\n\n", encoding="utf-8")
    assert read_output("msg", str(path), 100) == "line 1\nline 2\n"


@pytest.mark.parametrize(
    ("prepare", "problem"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"x" * 101), "larger than 100 bytes"),
        (lambda p: p.write_bytes(b"\xff\xfe"), "not UTF-8"),
    ],
)
def test_a_bad_file_is_named_with_its_output(tmp_path: Path, prepare: Any, problem: str) -> None:
    path = tmp_path / "out.txt"
    prepare(path)
    with pytest.raises(ValueError, match=problem) as err:
        read_output("msg", str(path), 100)
    assert f"output 'msg' from {path}" in str(err.value)


def _exec(tmp_path: Path, script: str, *outputs: str) -> tuple[int, list[Any], str]:
    """Run `shoal-worker exec` as a pod would; its exit code, parsed stdout, termination."""
    termination = tmp_path / "termination-log"
    options = [arg for name in outputs for arg in ("--output", f"{name}={tmp_path / name}")]
    env = {**os.environ, TOKEN_ENV: TOKEN, "SHOAL_ARTIFACTS": ""}
    done = subprocess.run(
        [sys.executable, "-m", "shoal_worker.runner", "exec", *options,
         "--termination-log", str(termination), "--", "sh", "-c", script],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    lines = [parse_line(line, TOKEN) for line in done.stdout.splitlines()]
    text = termination.read_text() if termination.exists() else ""
    return done.returncode, lines, text


def test_exec_reports_each_file_once_the_command_succeeded(tmp_path: Path) -> None:
    code, lines, termination = _exec(
        tmp_path, 'printf "no newline"; printf heads > coin; printf "7\\n" > n', "coin", "n"
    )
    assert code == 0
    assert lines[0].text == "no newline"  # type: ignore[union-attr]
    assert lines[-1] == ResultMessage("succeeded", {"coin": "heads", "n": "7"}, None, seq=1)
    assert json.loads(termination)["outputs"] == {"coin": "heads", "n": "7"}


def test_exec_fails_naming_a_missing_file(tmp_path: Path) -> None:
    code, lines, _ = _exec(tmp_path, "echo ok", "coin")
    assert code == 1
    result = lines[-1]
    assert isinstance(result, ResultMessage)
    assert result.status == "failed"
    assert result.message == (
        f"output 'coin' from {tmp_path / 'coin'}: no such file "
        "(the command exited 0 without writing it)"
    )


def test_a_failed_command_keeps_its_exit_code_and_reports_no_outputs(tmp_path: Path) -> None:
    code, lines, _ = _exec(tmp_path, "printf heads > coin; exit 3", "coin")
    assert code == 3
    assert not any(isinstance(line, ResultMessage) for line in lines)


def test_a_path_names_environment_variables_as_kubernetes_does(tmp_path: Path) -> None:
    env = {**os.environ, TOKEN_ENV: TOKEN, "SHOAL_ARTIFACTS": "", "SHOAL_ITEM_INDEX": "4"}
    done = subprocess.run(
        [sys.executable, "-m", "shoal_worker.runner", "exec",
         "--output", f"coin={tmp_path}/coin-$(SHOAL_ITEM_INDEX)-$(UNSET_NAME)",
         "--termination-log", str(tmp_path / "termination-log"),
         "--", "sh", "-c", 'printf tails > "coin-$SHOAL_ITEM_INDEX-\\$(UNSET_NAME)"'],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    result = parse_line(done.stdout.splitlines()[-1], TOKEN)
    assert result == ResultMessage("succeeded", {"coin": "tails"}, None, seq=1)
