"""The cluster commands of the `shoal` CLI against a real control plane and operator.

`shoal submit|get|list|logs|stop|retry` run as real processes against the session's
operator (tests/cluster/conftest.py). Pods are host processes here (the node agent), so a
command node can wait for a file the test creates: that file, not a sleep, is what moves
a workflow along.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.cluster.conftest import REPO, get_workflow, wait_workflow
from tests.support.plugin import Kubectl
from tests.support.waits import wait_gone

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]

SHOAL = [sys.executable, "-m", "shoal.cli.main"]
IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"
CLI_TIMEOUT = 120


@dataclass
class Shoal:
    """The `shoal` CLI bound to the test cluster and the test's namespace."""

    kubeconfig: Path
    namespace: str

    def argv(self, args: tuple[str, ...]) -> list[str]:
        return [*SHOAL, *args, "-n", self.namespace, "--kubeconfig", str(self.kubeconfig)]

    def __call__(
        self, *args: str, timeout: float = CLI_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(args), capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )


@pytest.fixture
def shoal(kubeconfig: Path, namespace: str) -> Shoal:
    return Shoal(kubeconfig, namespace)


def manifest(tmp_path: Path, name: str, *nodes: dict[str, Any], **spec: Any) -> Path:
    meta = {"generateName": name} if name.endswith("-") else {"name": name}
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": meta,
        "spec": {"image": IMAGE, "nodes": list(nodes), **spec},
    }
    path = tmp_path / f"{name.rstrip('-')}.yaml"
    # JSON (which is YAML) quotes every key: PyYAML's dump leaves `n:` bare, and kubectl
    # and shoal read a bare `n` as the boolean false (docs/workflows.md).
    path.write_text(json.dumps(doc, indent=2))
    return path


def wait_for_file(path: str) -> str:
    """Shell that blocks a pod until the test creates `path` (bounded by the pod's own
    timeout and the test's deadlines)."""
    return f"while [ ! -f {path} ]; do sleep 0.05; done"


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, (
        f"exit {result.returncode} (wanted {code})\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


class LineReader:
    """Reads a running process's stdout on a thread, so waits for a line have a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=self._pump, args=(stdout,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, wanted: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.lines:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line {wanted!r} within {timeout}s; got {self.lines}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"output ended without {wanted!r}; got {self.lines}")
            self.lines.append(line)

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return code


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; ended (by their own handle) if the test did not."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_submit_watch_then_get_and_list(shoal: Shoal, kubectl: Kubectl, namespace: str) -> None:
    hello = str(REPO / "examples" / "hello.yaml")
    result = ok(shoal("submit", hello, "-p", "name=Ada", "--watch", "--timeout", "90"))
    out = result.stdout
    assert f"workflow hello created in namespace {namespace}" in out
    assert 'outputs {"message": "hello, Ada!"}' in out
    assert "workflow hello: Succeeded (2/2 nodes" in out
    # The run records its effective parameters.
    created = json.loads(
        kubectl("get", "workflow", "hello", "-o", "json", namespace=namespace).stdout
    )
    assert created["spec"]["parameters"] == {"name": "Ada"}

    got = ok(shoal("get", "hello")).stdout
    assert "Phase:      Succeeded" in got
    assert "Progress:   2/2" in got
    assert 'hello.message = "hello, Ada!"' in got
    assert "goodbye.message = \"after 'hello, Ada!', goodbye, Ada!\"" in got
    rows = [line.split() for line in got.splitlines()]
    assert ["hello", "Succeeded", "1", "-", "0"] in rows

    whole = json.loads(ok(shoal("get", "hello", "-o", "json")).stdout)
    assert whole["metadata"]["name"] == "hello"
    assert whole["spec"]["nodes"][0]["name"] == "hello"
    status = whole["status"]
    assert status["phase"] == "Succeeded"
    assert status["nodes"]["goodbye"]["outputs"]["message"].startswith("after 'hello, Ada!'")

    for command in ("list", "ls"):
        listed = ok(shoal(command)).stdout.splitlines()
        assert listed[0].split() == ["NAME", "PHASE", "PROGRESS", "AGE", "MESSAGE"]
        assert listed[1].split()[:3] == ["hello", "Succeeded", "2/2"]
    everywhere = ok(shoal("list", "-A")).stdout.splitlines()
    assert [namespace, "hello", "Succeeded", "2/2"] in [line.split()[:4] for line in everywhere]

    again = ok(shoal("submit", hello), 1)
    assert f"workflow 'hello' already exists in namespace '{namespace}'" in again.stderr


def test_invalid_manifest_exits_2_and_creates_nothing(
    shoal: Shoal, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    bad = manifest(
        tmp_path,
        "bad",
        {"name": "a", "job": "shoal.noop", "dependsOn": ["missing"]},
        {"name": "b", "job": "shoal.noop", "when": "nodes.a.outputs.x > 0"},
    )
    result = ok(shoal("submit", str(bad), "--watch"), 2)
    where = re.escape(str(bad)) + r":\d+:\d+: "  # file:line:column
    assert re.search(where + "node 'a': dependsOn: unknown dependency 'missing'", result.stderr)
    assert re.search(where + "node 'b': when: refers to nodes.a", result.stderr)
    schema = manifest(tmp_path, "schema", {"name": "a", "job": "x", "retries": {"limit": -1}})
    result = ok(shoal("submit", str(schema)), 2)
    at = re.escape(str(schema)) + r":\d+:\d+: "
    assert re.search(at + "node 'a': retries.limit: Input should be", result.stderr)
    assert "Traceback" not in result.stderr
    undeclared = ok(shoal("submit", str(REPO / "examples" / "hello.yaml"), "-p", "nope=1"), 2)
    assert "nope" in undeclared.stderr
    listing = kubectl("get", "workflows", "-o", "name", namespace=namespace).stdout
    assert listing.strip() == ""

    # A generateName manifest gets a server-made name, which submit prints.
    fresh = manifest(tmp_path, "gen-", {"name": "a", "job": "shoal.noop"})
    name = ok(shoal("submit", str(fresh), "-o", "name")).stdout.strip()
    assert name.startswith("gen-")
    assert len(name) > len("gen-")
    assert kubectl("get", "workflows", "-o", "name", namespace=namespace).stdout.split() == [
        f"workflow.shoal.dev/{name}"
    ]

    missing = ok(shoal("get", "nope"), 1)
    assert missing.stderr.strip() == f"error: workflow 'nope' not found in namespace '{namespace}'"


def test_logs_and_follow(
    shoal: Shoal,
    k8s_api: Any,
    namespace: str,
    tmp_path: Path,
    stopper: list[subprocess.Popen[str]],
) -> None:
    go = tmp_path / "go"
    talk = (
        """echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN "'{"type":"log","message":"hello, world!"}'; """
        """echo plain line; """
        f"{wait_for_file(str(go))}; echo bye"
    )
    path = manifest(
        tmp_path,
        "chatty",
        {"name": "talk", "command": ["sh", "-c", talk]},
        {"name": "later", "command": ["sh", "-c", "echo later line"], "dependsOn": ["talk"]},
        podGC={"strategy": "OnPodSuccess"},
    )
    ok(shoal("submit", str(path)))
    follow = shoal.popen("logs", "chatty", "-f")
    stopper.append(follow)
    reader = LineReader(follow)
    reader.wait_for("talk | hello, world!")

    # While it runs: one node's log, protocol lines decoded, no prefix for a single pod.
    one = ok(shoal("logs", "chatty", "talk")).stdout.splitlines()
    assert one[:2] == ["hello, world!", "plain line"]
    assert not any("@shoal/" in line for line in one)

    go.touch()
    assert reader.finish(timeout=90) == 0, follow.stderr.read() if follow.stderr else ""
    talked = [line for line in reader.lines if line.startswith("talk |")]
    assert talked == ["talk | hello, world!", "talk | plain line", "talk | bye"]
    assert [line for line in reader.lines if not line.startswith("talk |")] == [
        "later | later line"
    ]
    assert get_workflow(k8s_api, namespace, "chatty")["status"]["phase"] == "Succeeded"

    # OnPodSuccess deletes succeeded nodes' pods: say so instead of printing nothing.
    core = client.CoreV1Api(k8s_api)
    wait_gone(
        core.list_namespaced_pod,
        namespace,
        label_selector="shoal.dev/workflow=chatty",
        timeout=60,
        description="the succeeded nodes' pods to be deleted",
    )
    gone = ok(shoal("logs", "chatty"), 1)
    assert "no log for talk, later: the pods are gone: podGC strategy OnPodSuccess" in (gone.stderr)


def test_stop_then_retry_a_stopped_workflow(
    shoal: Shoal, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    path = manifest(
        tmp_path,
        "napper",
        {"name": "nap", "command": ["sh", "-c", f"test -f {ready} || exec sleep 300"]},
        {"name": "after", "job": "shoal.noop", "dependsOn": ["nap"]},
    )
    ok(shoal("submit", str(path)))
    wait_workflow(k8s_api, namespace, "napper", phases={"Running"}, timeout=60)
    stopped = ok(shoal("stop", "napper", "--wait", "--timeout", "60")).stdout
    assert "stop requested" in stopped
    assert "workflow napper: Stopped" in stopped
    status = get_workflow(k8s_api, namespace, "napper")["status"]
    assert status["nodes"]["nap"]["phase"] == "Failed"
    assert status["nodes"]["after"]["phase"] == "Omitted"
    assert "already finished (Stopped)" in ok(shoal("stop", "napper")).stdout

    ready.touch()
    retried = ok(shoal("retry", "napper", "--watch", "--timeout", "90")).stdout
    assert "running again: nap, after" in retried
    assert "workflow napper: Succeeded" in retried
    body = get_workflow(k8s_api, namespace, "napper")
    assert body["spec"]["stop"] is False
    assert body["status"]["retries"] == 1


def test_terminate_runs_nothing_more_and_retry_reopens_it(
    shoal: Shoal, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    path = manifest(
        tmp_path,
        "ender",
        {"name": "nap", "command": ["sh", "-c", f"test -f {ready} || exec sleep 300"]},
        {"name": "notify", "job": "shoal.noop", "dependsOn": ["nap"], "runPolicy": "always"},
    )
    ok(shoal("submit", str(path)))
    wait_workflow(k8s_api, namespace, "ender", phases={"Running"}, timeout=60)
    ended = ok(shoal("terminate", "ender", "--wait", "--timeout", "60")).stdout
    assert "terminate requested" in ended
    assert "workflow ender: Stopped" in ended
    status = get_workflow(k8s_api, namespace, "ender")["status"]
    assert status["nodes"]["nap"]["phase"] == "Failed"
    assert status["nodes"]["notify"]["phase"] == "Omitted"

    ready.touch()
    retried = ok(shoal("retry", "ender", "--watch", "--timeout", "90")).stdout
    assert "workflow ender: Succeeded" in retried
    body = get_workflow(k8s_api, namespace, "ender")
    assert (body["spec"]["stop"], body["spec"]["terminate"]) == (False, False)
    assert body["status"]["nodes"]["notify"]["phase"] == "Succeeded"


def test_submit_log_streams_node_logs_while_watching(shoal: Shoal, tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        "chatty",
        {"name": "first", "command": ["sh", "-c", "echo first-line; echo second-line"]},
        {"name": "then", "command": ["sh", "-c", "echo then-line"], "dependsOn": ["first"]},
    )
    done = ok(shoal("submit", str(path), "--log", "--timeout", "90")).stdout
    assert "workflow chatty: Succeeded" in done
    lines = done.splitlines()
    assert "first | first-line" in lines
    assert "first | second-line" in lines
    assert "then | then-line" in lines
    assert lines.index("first | first-line") < lines.index("first | second-line")


def test_retry_reruns_only_what_failed(
    shoal: Shoal, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    fixed = tmp_path / "fixed"
    path = manifest(
        tmp_path,
        "flaky",
        {"name": "first", "job": "greet", "args": {"name": "retry"}},
        {
            "name": "check",
            "command": ["sh", "-c", f"echo checking; test -f {fixed}"],
            "dependsOn": ["first"],
        },
        {"name": "after", "job": "shoal.echo", "args": {"n": 1}, "dependsOn": ["check"]},
        {"name": "cleanup", "job": "shoal.noop", "dependsOn": ["check"], "runPolicy": "onFailure"},
    )
    failed = ok(shoal("submit", str(path), "--watch", "--timeout", "90"), 1)
    assert "workflow flaky: Failed" in failed.stdout
    before = json.loads(ok(shoal("get", "flaky", "-o", "json")).stdout)["status"]
    assert before["nodes"]["check"]["phase"] == "Failed"
    assert before["nodes"]["after"]["phase"] == "Omitted"
    assert ok(shoal("logs", "flaky", "check")).stdout.splitlines() == ["checking"]

    fixed.touch()
    retried = ok(shoal("retry", "flaky", "--watch", "--timeout", "90")).stdout
    assert "retry 1, running again: check, after; kept: first, cleanup" in retried
    assert "workflow flaky: Succeeded" in retried

    after = json.loads(ok(shoal("get", "flaky", "-o", "json")).stdout)["status"]
    assert after["phase"] == "Succeeded"
    assert after["retries"] == 1
    assert after["progress"] == "4/4"
    assert after["nodes"]["first"] == before["nodes"]["first"]  # not run again
    assert after["nodes"]["cleanup"] == before["nodes"]["cleanup"]
    assert after["nodes"]["first"]["outputs"] == {"message": "hello, retry!"}
    assert after["nodes"]["check"]["phase"] == "Succeeded"
    assert after["nodes"]["check"]["attempts"] == 1
    assert after["nodes"]["after"]["outputs"] == {"n": 1}
    assert "Retries:    1" in ok(shoal("get", "flaky")).stdout

    refused = ok(shoal("retry", "flaky"), 1)
    assert "only a Failed or Stopped workflow can be retried" in refused.stderr


ITEM_SCRIPT = (
    'echo "$1" >> "$MARKS"; case "$1" in 1|3) test -f "$FIXED" || exit 3;; esac; '
    'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN {\\"type\\":\\"output\\",\\"key\\":\\"v\\",'
    '\\"value\\":$(($1 * 10))}"'
)
"""A fan-out item: notes its index in $MARKS (one line per pod that ran), fails for items
1 and 3 until $FIXED exists, and outputs `v` = ten times its item."""


def test_retry_reruns_only_the_failed_items_of_a_fan_out(
    shoal: Shoal, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    marks, fixed = tmp_path / "marks", tmp_path / "fixed"
    path = manifest(
        tmp_path,
        "items",
        {
            "name": "fan",
            "forEach": [0, 1, 2, 3, 4],
            "failFast": False,
            "command": ["sh", "-c", ITEM_SCRIPT, "fan", "${{ item }}"],
            "env": [{"name": "MARKS", "value": str(marks)}, {"name": "FIXED", "value": str(fixed)}],
        },
        {
            "name": "sum",
            "job": "shoal.echo",
            "args": {"all": "${{ nodes.fan.outputs.v }}"},
            "dependsOn": ["fan"],
        },
    )
    failed = ok(shoal("submit", str(path), "--watch", "--timeout", "90"), 1)
    assert "workflow items: Failed" in failed.stdout
    before = get_workflow(k8s_api, namespace, "items")["status"]["nodes"]["fan"]
    assert before["succeededItems"] == "0,2,4"
    assert before["outputs"] == {"v": [0, None, 20, None, 40]}
    assert sorted(marks.read_text().split()) == ["0", "1", "2", "3", "4"]

    fixed.touch()
    marks.write_text("")
    retried = ok(shoal("retry", "items", "--watch", "--timeout", "90")).stdout
    assert "retry 1, running again: fan, sum" in retried
    assert "fan: keeps the outputs of items 0,2,4" in retried
    assert "workflow items: Succeeded" in retried

    status = get_workflow(k8s_api, namespace, "items")["status"]
    fan = status["nodes"]["fan"]
    assert sorted(marks.read_text().split()) == ["1", "3"]  # two pods ran, not five
    assert fan["attempts"] == 2
    assert fan["items"]["succeeded"] == 5
    assert fan["succeededItems"] == "0-4"
    assert fan["outputs"] == {"v": [0, 10, 20, 30, 40]}  # as if every item had succeeded
    assert status["nodes"]["sum"]["outputs"] == {"all": [0, 10, 20, 30, 40]}


def labelled(tmp_path: Path, name: str, labels: dict[str, str], *nodes: dict[str, Any]) -> Path:
    """A Workflow manifest with labels, for `list -l` and `delete -l`."""
    path = manifest(tmp_path, name, *nodes)
    doc = yaml.safe_load(path.read_text())
    doc["metadata"]["labels"] = labels
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_watch_wait_select_tail_and_delete(
    shoal: Shoal,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
    stopper: list[subprocess.Popen[str]],
) -> None:
    go = tmp_path / "go"
    talk = f"echo one; echo two; {wait_for_file(str(go))}"
    gated = labelled(
        tmp_path, "gated", {"team": "etl"}, {"name": "talk", "command": ["sh", "-c", talk]}
    )
    other = labelled(tmp_path, "other", {"team": "web"}, {"name": "a", "job": "shoal.noop"})

    # --dry-run=server: the API server checks the object, and nothing is created.
    dry = ok(shoal("submit", str(gated), "--dry-run=server", "-o", "json"))
    assert json.loads(dry.stdout)["metadata"]["name"] == "gated"
    assert kubectl("get", "workflows", "-o", "name", namespace=namespace).stdout.strip() == ""

    ok(shoal("submit", str(gated)))
    # docs/cli.md's CI idiom: submit, then wait for the name it printed.
    connection = f"-n {namespace} --kubeconfig {shoal.kubeconfig}"
    shoal_cmd = " ".join(SHOAL)
    ci = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; {shoal_cmd} submit -o name {other} {connection} "
            f"| xargs {shoal_cmd} wait --for Succeeded --timeout 90 {connection}",
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        cwd=REPO,
        check=False,
    )
    assert (ci.returncode, ci.stdout) == (0, "workflow other: Succeeded\n"), ci.stderr
    assert ok(shoal("wait", "gated", "--for", "Running", "--timeout", "60")).stdout == (
        "workflow gated: Running\n"
    )
    late = ok(shoal("wait", "gated", "--for", "Succeeded", "--timeout", "0.5"), 1)
    assert "timed out after 0.5s waiting for workflow 'gated' to be Succeeded" in late.stderr

    assert ok(shoal("list", "-l", "team=etl", "-o", "name")).stdout == "workflow/gated\n"
    none = ok(shoal("list", "--selector", "team=ops"))
    assert (none.stdout, none.stderr.strip()) == (
        "",
        f"No workflows matching 'team=ops' in namespace {namespace}.",
    )

    # The running pod's log: its last line only, then with the kubelet's timestamp.
    follow = shoal.popen("logs", "gated", "talk", "-f")
    stopper.append(follow)
    reader = LineReader(follow)
    reader.wait_for("two")
    assert ok(shoal("logs", "gated", "--tail", "1")).stdout == "two\n"
    stamped = ok(shoal("logs", "gated", "--tail", "1", "--timestamps")).stdout
    assert stamped.endswith("Z two\n")
    assert stamped[:4].isdigit()

    # `get --watch | head -1`: the reader goes away; the next change ends it quietly.
    pipeline = subprocess.Popen(
        [
            "bash",
            "-c",
            f"{' '.join(shoal.argv(('get', 'gated', '--watch')))} | head -1; "
            'echo "status ${PIPESTATUS[0]}" >&2',
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    stopper.append(pipeline)
    assert pipeline.stdout is not None
    assert pipeline.stdout.readline() == "Name:       gated\n"
    go.touch()
    _, errors = pipeline.communicate(timeout=90)
    assert errors.strip() == "status 141"  # no traceback, no "Exception ignored"
    assert reader.finish(timeout=90) == 0

    done = ok(shoal("wait", "gated", "other", "--timeout", "90")).stdout.splitlines()
    assert sorted(done) == ["workflow gated: Succeeded", "workflow other: Succeeded"]
    watched = ok(shoal("get", "gated", "--watch", "-o", "yaml")).stdout
    assert yaml.safe_load(watched)["status"]["phase"] == "Succeeded"  # finished: printed once

    deleted = ok(shoal("delete", "gated", "ghost"), 1)
    assert deleted.stdout == "workflow gated deleted\n"
    assert deleted.stderr == f"error: workflow 'ghost' not found in namespace '{namespace}'\n"
    assert ok(shoal("delete", "-l", "team=web")).stdout == "workflow other deleted\n"


def test_cron_list_suspend_resume_and_context(
    shoal: Shoal, kubectl: Kubectl, namespace: str, kubeconfig: Path
) -> None:
    cron = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 0 3 * * *",
            "workflowSpec": {"image": IMAGE, "nodes": [{"name": "a", "job": "shoal.noop"}]},
        },
    }
    kubectl("apply", "-f", "-", namespace=namespace, stdin=json.dumps(cron))
    listed = json.loads(ok(shoal("cron", "list", "-o", "json")).stdout)
    assert [(c["name"], c["schedule"], c["description"], c["suspended"]) for c in listed] == [
        ("nightly", "0 0 3 * * *", "At 03:00", False)
    ]

    def suspended() -> str:
        return kubectl(
            "get", "cronworkflow", "nightly", "-o", "jsonpath={.spec.suspend}", namespace=namespace
        ).stdout

    assert ok(shoal("cron", "suspend", "nightly")).stdout == "cronworkflow nightly suspended\n"
    assert suspended() == "true"
    table = ok(shoal("cron", "list")).stdout.splitlines()
    assert table[0].split()[-1] == "SUSPENDED"
    assert table[1].split()[-1] == "yes"
    assert ok(shoal("cron", "resume", "nightly")).stdout == "cronworkflow nightly resumed\n"
    assert suspended() == "false"
    missing = ok(shoal("cron", "suspend", "nope"), 1)
    assert missing.stderr == f"error: cronworkflow 'nope' not found in namespace '{namespace}'\n"

    # --context names the kubeconfig's context explicitly; an unknown one is one error line.
    current = yaml.safe_load(kubeconfig.read_text())["current-context"]
    assert "nightly" in ok(shoal("cron", "list", "--context", current)).stdout
    wrong = ok(shoal("cron", "list", "--context", "no-such-context"), 1)
    assert wrong.stderr.startswith("error: cannot load Kubernetes credentials from")
