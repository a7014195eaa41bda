"""`shoal run --ui`: the run's dashboard API on loopback, live while it runs, gone after.

A node waits for a file the test creates, so the run is caught while it runs without any
sleep: the test waits on conditions (bounded), and the job's own wait is bounded too.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.local.conftest import EXAMPLES, REPO, SHOAL, wait_for
from tests.local.test_doc_commands_run import shell, shown

GATED = """\
    apiVersion: shoal.dev/v1alpha1
    kind: Workflow
    metadata:
      name: gated
    spec:
      nodes:
        - name: first
          image: busybox
          command: [sh, -c, 'echo hello from first']
        - name: wait
          image: busybox
          dependsOn: [first]
          command: [sh, -c, '{script}']
    """
# Waits for the gate file, then for a second one, at most 120 s each (the job's bound).
WAIT = (
    "echo waiting; i=0; while [ ! -f {gate} ] && [ $i -lt 1200 ]; "
    "do sleep 0.1; i=$((i+1)); done; echo released; "
    "i=0; while [ ! -f {gate}2 ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; echo done"
)
URL = re.compile(
    r"dashboard: (http://127\.0\.0\.1:(\d+)/) \(this run, loopback only, no authentication"
)


def dashboard_url(stderr: Path) -> tuple[str, int]:
    wait_for(lambda: URL.search(stderr.read_text()) is not None, 60, "the dashboard URL")
    found = URL.search(stderr.read_text())
    assert found is not None
    return found.group(1), int(found.group(2))


def listening_addresses(port: int) -> list[str]:
    """Local addresses of listening TCP sockets on `port` (hex, from /proc/net/tcp{,6})."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def gated_run(
    manifest: Callable[..., Path], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    gate = tmp_path / "go"
    path = manifest(GATED.format(script=WAIT.format(gate=gate)))
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [*SHOAL, "run", "--plain", "--ui-keep", "-o", "json", str(path)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=REPO,
        )
    try:
        yield proc, gate, stderr
    finally:
        gate.touch()
        gate.with_name("go2").touch()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def detail(client: httpx.Client) -> dict[str, Any]:
    resp = client.get("/api/v1/workflows/default/gated")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_ui_serves_the_live_run_on_loopback_then_its_end_until_ctrl_c(
    gated_run: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    proc, gate, stderr = gated_run
    url, port = dashboard_url(stderr)
    assert listening_addresses(port) == ["0100007F"], "only 127.0.0.1, on IPv4 and IPv6"
    with httpx.Client(base_url=url, timeout=10) as client:
        wait_for(
            lambda: detail(client)["status"]["nodes"].get("wait", {}).get("phase") == "Running",
            60,
            "node wait Running",
        )
        live = detail(client)
        assert live["metadata"]["name"] == "gated"
        assert live["status"]["phase"] == "Running"
        assert live["status"]["nodes"]["first"]["phase"] == "Succeeded"
        assert [n["name"] for n in live["spec"]["nodes"]] == ["first", "wait"]
        (row,) = client.get("/api/v1/workflows").json()["items"]
        assert (row["metadata"]["name"], row["phase"], row["progress"]) == (
            "gated",
            "Running",
            "1/2",
        )
        assert client.get("/api/v1/workflows", params={"phase": "Succeeded"}).json()["items"] == []
        first_log = client.get("/api/v1/workflows/default/gated/nodes/first/log").json()
        assert [line["text"] for line in first_log["lines"]] == ["hello from first"]
        missing = client.get("/api/v1/workflows/default/other")
        assert (missing.status_code, missing.json()["code"]) == (404, "NotFound")
        # A live tail: the line written before, then the one the gate releases, then `end`.
        events = []
        params = {"follow": "true", "item": "0", "seconds": "60"}
        with client.stream(
            "GET", "/api/v1/workflows/default/gated/nodes/wait/log", params=params
        ) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            for raw in resp.iter_lines():
                if raw.startswith("data: "):
                    events.append(json.loads(raw[6:]))
                    if events[-1].get("text") == "waiting":
                        gate.touch()
                    # Seen while the attempt still runs (it waits for gate 2): live.
                    if events[-1].get("text") == "released":
                        gate.with_name("go2").touch()
        assert [e.get("text") for e in events[:-1]] == ["waiting", "released", "done"]
        assert events[-1] == {"reason": "eof"}
        wait_for(lambda: "dashboard still at" in stderr.read_text(), 60, "the run's end")
        ended = detail(client)
        assert ended["status"]["phase"] == "Succeeded"
        assert client.get("/api/v1/workflows", params={"phase": "Running"}).json()["items"] == []
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    printed = json.loads(out)  # `-o json`: what the run itself says it ended with
    assert printed["phase"] == ended["status"]["phase"]
    assert {n: v["phase"] for n, v in printed["nodes"].items()} == {
        n: v["phase"] for n, v in ended["status"]["nodes"].items()
    }
    assert refused(port)


def test_ui_on_an_example_stops_with_the_run() -> None:
    """docs/dashboard.md's command, run as shown: the URL is printed, the run succeeds,
    and the dashboard is gone once `shoal run` returns."""
    (command,) = shown("dashboard.md", "shoal run --ui ")
    done = shell(command)
    assert done.returncode == 0, done.stderr
    assert "workflow diamond Succeeded" in done.stdout
    found = URL.search(done.stdout)
    assert found is not None, done.stdout
    assert "until the run ends" in done.stdout
    assert refused(int(found.group(2)))


def test_ui_port_taken_is_an_error_before_the_run(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [*SHOAL, "run", "--ui", "--ui-port", str(port), str(EXAMPLES / "hello.yaml")],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
    assert proc.returncode == 2, proc.stderr
    assert f"--ui-port {port}:" in proc.stderr
    assert "started" not in proc.stdout
