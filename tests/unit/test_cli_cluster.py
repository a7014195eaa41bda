"""The cluster commands' pure parts: retry planning, rendering, log decoding, and errors
that need no cluster (tests/cluster/test_cli.py runs them against a real one)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shoal.cli import common, get_command, list_command, logs_command, retry_command, submit_command
from shoal.cli.main import main

SHOAL = [sys.executable, "-m", "shoal.cli.main"]


def workflow(nodes: list[dict[str, Any]], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "wf",
            "namespace": "ns",
            "uid": "u-1",
            "resourceVersion": "42",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"nodes": nodes},
        "status": status,
    }


FAILED = workflow(
    [
        {"name": "first", "job": "greet"},
        {"name": "boom", "job": "explode", "dependsOn": ["first"]},
        {"name": "down", "job": "noop", "dependsOn": ["boom"]},
        {"name": "cleanup", "job": "noop", "dependsOn": ["boom"], "runPolicy": "onFailure"},
        {"name": "alarm", "job": "noop", "dependsOn": ["first"], "runPolicy": "onFailure"},
        {"name": "maybe", "job": "noop", "dependsOn": ["first"], "when": "false"},
    ],
    {
        "phase": "Failed",
        "progress": "6/6",
        "message": "node 'boom' failed: the database is on fire",
        "startedAt": "2026-01-01T00:00:01.000000Z",
        "finishedAt": "2026-01-01T00:00:03.500000Z",
        "nodes": {
            "first": {"phase": "Succeeded", "attempts": 1, "outputs": {"message": "hi"}},
            "boom": {"phase": "Failed", "attempts": 3, "exitCode": 1, "message": "on fire"},
            "down": {"phase": "Omitted", "message": "not run: dependency 'boom' Failed"},
            "cleanup": {"phase": "Succeeded", "attempts": 1, "outputs": {"cleaned": True}},
            "alarm": {"phase": "Skipped"},
            "maybe": {"phase": "Skipped", "message": "when: false"},
        },
    },
)


def test_retry_reruns_failed_omitted_and_skipped_on_failure_nodes_only() -> None:
    assert retry_command.nodes_to_reset(FAILED) == ["boom", "down", "alarm"]


def test_retry_patch_resets_those_nodes_and_reopens_the_workflow() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    patch = retry_command.reopen_patch(FAILED, ["boom", "down", "alarm"], now)
    assert patch["metadata"] == {"resourceVersion": "42"}
    status = patch["status"]
    assert status["phase"] == "Running"
    assert status["message"] is None
    assert status["finishedAt"] is None
    assert status["startedAt"] == "2026-01-02T03:04:05.000000Z"
    assert status["retries"] == 1
    assert status["progress"] == "3/6"
    assert status["nodes"] == {
        "boom": {"phase": "Pending", "attempts": None, "exitCode": None, "message": None},
        "down": {"phase": "Pending", "message": None},
        "alarm": {"phase": "Pending"},
    }
    again = retry_command.reopen_patch(
        {**FAILED, "status": {**FAILED["status"], "retries": 2}}, [], now
    )
    assert again["status"]["retries"] == 3


def test_retry_keeps_the_succeeded_items_of_a_fan_out_unless_an_ancestor_runs_again() -> None:
    fan = {
        "phase": "Failed",
        "attempts": 5,
        "message": "2 of 5 items failed",
        "items": {"total": 5, "succeeded": 3, "failed": 2},
        "outputs": {"v": [0, None, 20, None, 40]},
        "succeededItems": "0,2,4",
    }
    nodes = [{"name": "up", "job": "a"}, {"name": "fan", "job": "b", "dependsOn": ["up"]}]
    status = {"phase": "Failed", "nodes": {"up": {"phase": "Succeeded"}, "fan": fan}}
    obj = workflow(nodes, status)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert retry_command.kept_items(obj, ["fan"]) == {"fan": "0,2,4"}
    entry = retry_command.reopen_patch(obj, ["fan"], now)["status"]["nodes"]["fan"]
    assert entry == {"phase": "Pending", "attempts": None, "message": None, "items": None}

    upstream_failed = workflow(
        nodes, {**status, "nodes": {**status["nodes"], "up": {"phase": "Failed"}}}
    )
    assert retry_command.kept_items(upstream_failed, ["up", "fan"]) == {}
    cleared = retry_command.reopen_patch(upstream_failed, ["up", "fan"], now)
    assert cleared["status"]["nodes"]["fan"]["outputs"] is None
    assert cleared["status"]["nodes"]["fan"]["succeededItems"] is None


def test_submission_records_parameters_and_drops_server_fields() -> None:
    raw: dict[str, Any] = {
        "metadata": {"name": "x", "uid": "old", "resourceVersion": "1"},
        "spec": {"parameters": {"a": 1, "b": 2}, "nodes": []},
        "status": {"phase": "Succeeded"},
    }
    body = submit_command.submission(raw, {"b": 3, "c": [1]})
    assert body["spec"]["parameters"] == {"a": 1, "b": 3, "c": [1]}
    assert body["metadata"] == {"name": "x"}
    assert "status" not in body
    assert raw["spec"]["parameters"] == {"a": 1, "b": 2}  # the input is left alone
    assert "parameters" not in submit_command.submission({"spec": {"nodes": []}}, {})["spec"]


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("plain text", "plain text"),
        ('@shoal/2 {"type":"log","message":"hello, world!"}', "hello, world!"),
        # a live line still carries its attempt's token; a stored one no longer does
        ('@shoal/2:0a1b2c {"type":"log","message":"hello, world!"}', "hello, world!"),
        ('@shoal/2 {"type":"log","level":"warning","message":"careful"}', "WARNING careful"),
        (
            '@shoal/2 {"type":"progress","percent":50,"current":2,"total":4,"message":"half"}',
            "progress 50% 2/4 half",
        ),
        ('@shoal/2 {"type":"output","key":"n","value":[1,2]}', "output n = [1, 2]"),
        (
            '@shoal/2 {"type":"result","status":"succeeded","outputs":{"n":1}}',
            'result: succeeded outputs {"n": 1}',
        ),
        (
            '@shoal/2 {"type":"error","message":"boom","errorType":"RuntimeError"}',
            "ERROR RuntimeError: boom",
        ),
    ],
)
def test_protocol_lines_read_as_text(line: str, shown: str) -> None:
    assert logs_command.readable(line) == shown


def test_a_broken_protocol_line_is_shown_as_written_with_the_problem() -> None:
    text = logs_command.readable("@shoal/2 {not json")
    assert text.startswith("@shoal/2 {not json  (not a valid protocol line:")


def test_get_shows_nodes_in_manifest_order_with_outputs() -> None:
    fan = workflow(
        [{"name": "markets", "job": "m"}, {"name": "each", "job": "e", "forEach": [1, 2, 3]}],
        {
            "phase": "Failed",
            "progress": "2/2",
            "nodes": {
                "each": {
                    "phase": "Failed",
                    "attempts": 3,
                    "items": {"total": 3, "succeeded": 2, "failed": 1},
                    "failedItems": [{"index": 1, "message": "bad item"}],
                    "outputsOmitted": "outputs of 40 KiB are too large for the status",
                },
                "markets": {"phase": "Succeeded", "attempts": 1, "outputs": {"ids": ["a"]}},
            },
        },
    )
    lines = get_command.describe_workflow(fan)
    table = lines[lines.index("") + 1 :]
    assert table[0].split() == ["NODE", "PHASE", "ATTEMPTS", "ITEMS", "EXIT", "MESSAGE"]
    assert table[1].split() == ["markets", "Succeeded", "1", "-", "-"]
    assert table[2].split()[:5] == ["each", "Failed", "3", "3/3", "(1"]
    assert "  each[1]: bad item" in lines
    assert '  markets.ids = ["a"]' in lines
    assert "  each: (outputs of 40 KiB are too large for the status)" in lines


def test_list_rows_with_and_without_namespaces() -> None:
    rows = list_command.list_rows([FAILED], all_namespaces=True)
    assert rows[0].split() == ["NAMESPACE", "NAME", "PHASE", "PROGRESS", "AGE", "MESSAGE"]
    assert rows[1].split()[:4] == ["ns", "wf", "Failed", "6/6"]
    assert rows[1].endswith("node 'boom' failed: the database is on fire")
    assert list_command.list_rows([FAILED], all_namespaces=False)[1].split()[:3] == [
        "wf",
        "Failed",
        "6/6",
    ]


def test_watch_prints_each_node_change_once(capsys: pytest.CaptureFixture[str]) -> None:
    show = common.Transitions()
    nodes: list[dict[str, Any]] = [
        {"name": "a", "job": "x"},
        {"name": "bb", "job": "y", "dependsOn": ["a"]},
    ]
    running = workflow(nodes, {"phase": "Running", "nodes": {"a": {"phase": "Running"}}})
    show(workflow(nodes, {"phase": "Pending"}))
    show(running)
    show(running)
    show(workflow(nodes, {"phase": "Running", "nodes": {"a": {"phase": "Running", "attempts": 2}}}))
    done = {"phase": "Succeeded", "attempts": 2, "outputs": {"k": 1}}
    show(workflow(nodes, {"phase": "Running", "nodes": {"a": done, "bb": {"phase": "Skipped"}}}))
    assert capsys.readouterr().out.splitlines() == [
        "a   Running",
        "workflow wf: Running",
        "a   Running    attempt 2",
        'a   Succeeded  outputs {"k": 1}',
        "bb  Skipped",
    ]
    assert common.verdict(FAILED) == (
        "workflow wf: Failed (6/6 nodes, in 2.5s): node 'boom' failed: the database is on fire"
    )


def test_the_cli_module_loads_no_kubernetes_client() -> None:
    probe = (
        "import sys; import shoal.cli.main as m; m.build_parser(); "
        "print(sorted({n.split('.')[0] for n in sys.modules} "
        "& {'httpx', 'kopf', 'kubernetes', 'aiohttp', 'asyncpg'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_invalid_manifest_exits_2_before_any_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: shoal.dev/v1alpha1\nkind: Workflow\nmetadata: {name: x}\n"
        "spec:\n  nodes:\n    - {name: a, job: j, dependsOn: [nope]}\n"
    )
    nowhere = str(tmp_path / "no-kubeconfig")
    assert main(["submit", str(bad), "--kubeconfig", nowhere]) == 2
    assert f"{bad}:6:25: node 'a': dependsOn: unknown dependency 'nope'" in capsys.readouterr().err
    assert main(["logs", "x", "--item", "1", "--kubeconfig", nowhere]) == 2


def test_unreachable_api_server_is_one_clear_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": "https://127.0.0.1:1",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "team"}}
                ],
                "current-context": "x",
            }
        )
    )
    done = subprocess.run(
        [*SHOAL, "get", "wf", "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        "error: cannot reach the Kubernetes API server at https://127.0.0.1:1"
    )
    assert "Traceback" not in done.stderr
    assert common.default_namespace(str(kubeconfig)) == "team"
    missing = subprocess.run(
        [*SHOAL, "list", "--kubeconfig", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: kubeconfig {tmp_path / 'nope'} does not exist"


def test_a_with_sequence_node_is_a_fan_out_for_logs_and_get() -> None:
    from shoal.cli import get_command, logs_command

    obj = {
        "metadata": {"name": "w", "uid": "u"},
        "spec": {"nodes": [{"name": "seq", "job": "j", "withSequence": {"count": 3}}]},
    }
    target = logs_command.LogTarget(obj, "seq", None)
    assert target.fan_out == {"seq"}
    assert target.label("seq", 2, 1) == "seq[2]"
    assert get_command._is_fan_out(obj, "seq")
