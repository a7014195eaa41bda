"""The dashboard's time to interactive for a 10,000-item fan-out, in a real browser.

Source: canned, in memory. The real app (`shoal.server.app.create_app`: routers, CSRF
guard, security headers, static UI) serves a canned Workflow whose fan-out node has
10,000 items (counts, failed items and succeeded ranges as the operator writes them): its
caller dependency is replaced by an in-memory stand-in for the Kubernetes API, so the
figure is the browser's and the server's work, not a cluster's. Debian's chromium
(`/usr/bin/chromium`, `make browser`), driven by Playwright, never a downloaded browser.

Time to interactive = from navigation start until the DAG is drawn with the fan-out's
counts, the fan-out's item list is open and rendered (virtualized), and the page answers
a scroll of that list within one frame. The peer, in the same run, is the same page for a
10-item fan-out: the ratio says what the 10,000 items cost. Target (issue 15): <= 2 s.

It also prints how long the Workflow list takes to show `--rows` Workflows (1,000 by
default, the issue's list size; a 10-row list is its peer).

    .venv/bin/python bench/ui_browser.py [--items N] [--repeat N] [--rows N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))

CHROMIUM = "/usr/bin/chromium"
TARGET_SECONDS = 2.0
NAMESPACE = "bench"
NAME = "fan-out"


def canned_workflow(items: int) -> dict[str, Any]:
    """A running Workflow: prepare -> work (fan-out of `items`) -> publish, plus cleanup."""
    done = items * 7 // 10
    failed = [{"index": i, "message": f"item {i}: exit code 1"} for i in range(done, done + 5)]
    running = min(50, items - done - len(failed))
    counts = {
        "total": items,
        "succeeded": done,
        "failed": len(failed),
        "running": running,
        "pending": items - done - len(failed) - running,
        "skipped": 0,
    }
    nodes = [
        {"name": "prepare", "job": "shoal.echo"},
        {"name": "work", "job": "shoal.echo", "dependsOn": ["prepare"], "forEach": "x"},
        {"name": "publish", "job": "shoal.echo", "dependsOn": ["work"], "when": "true"},
        {"name": "cleanup", "job": "shoal.noop", "dependsOn": ["work"], "runPolicy": "always"},
    ]
    return {
        "metadata": {"namespace": NAMESPACE, "name": NAME, "uid": "u-1", "labels": {}},
        "spec": {"nodes": nodes},
        "status": {
            "phase": "Running",
            "progress": "1/4",
            "startedAt": "2026-01-01T00:00:00Z",
            "nodes": {
                "prepare": {"phase": "Succeeded", "attempts": 1, "exitCode": 0},
                "work": {
                    "phase": "Running",
                    "attempts": 1,
                    "items": counts,
                    "failedItems": failed,
                    "succeededItems": f"0-{done - 1}",
                },
            },
        },
    }


class CannedApi:
    """The few KubeApi calls the pages make, answered from memory: the fan-out Workflow,
    and a list of `rows` Workflows (copies of it under other names)."""

    def __init__(self, workflow: dict[str, Any], rows: int) -> None:
        self.workflow = workflow
        meta = workflow["metadata"]
        self.listing = [
            {**workflow, "metadata": {**meta, "name": f"run-{i:05d}", "uid": f"u-{i}"}}
            for i in range(rows)
        ]

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if path.endswith(f"/workflows/{NAME}"):
            return self.workflow
        params = kwargs.get("params") or {}
        start = int(params.get("continue") or 0)
        end = start + int(params.get("limit") or 100)
        more = {"continue": str(end)} if end < len(self.listing) else {}
        return {"items": self.listing[start:end], "metadata": more}

    async def close(self) -> None:
        return None


@contextlib.contextmanager
def serve_canned(items: int, rows: int = 1) -> Iterator[str]:
    """The real app on a free loopback port, reading the canned Workflow; yields its URL."""
    import uvicorn

    from shoal.server.app import create_app
    from shoal.server.identity import AuthMode, Cluster, caller_api

    app = create_app(Cluster("https://127.0.0.1:9", False, AuthMode.CLIENT))
    canned = CannedApi(canned_workflow(items), rows)

    async def fake_caller() -> AsyncIterator[CannedApi]:
        yield canned

    app.dependency_overrides[caller_api] = fake_caller
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the canned server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _interactive_ms(page: Any, url: str) -> float:
    """One load of the workflow page, to interactive; milliseconds since navigation start."""
    page.goto(f"{url}/#/workflow/{NAMESPACE}/{NAME}", wait_until="commit")
    page.locator('svg.dag g.node[data-node="work"] text.detail').first.wait_for(timeout=30_000)
    page.locator('g.node[data-node="work"]').click()
    page.locator("#items .item").first.wait_for(timeout=30_000)
    return float(
        page.evaluate(
            """() => new Promise((resolve) => {
                const box = document.getElementById("items");
                box.scrollTop = box.scrollHeight / 2;
                requestAnimationFrame(() => requestAnimationFrame(() => {
                    if (!box.querySelector(".item")) throw new Error("items vanished");
                    resolve(performance.now());
                }));
            })"""
        )
    )


def list_seconds(rows: int = 1000) -> float:
    """Seconds from navigation start until the list shows all `rows` Workflows."""
    from playwright.sync_api import sync_playwright

    with serve_canned(10, rows) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context()
            context.add_init_script("sessionStorage.setItem('shoal.token', 'bench')")
            page = context.new_page()
            page.goto(f"{url}/#/workflows", wait_until="commit")
            page.wait_for_function(
                "n => document.querySelectorAll('#workflows tbody tr').length === n",
                arg=rows,
                timeout=60_000,
            )
            return float(page.evaluate("performance.now()")) / 1000
        finally:
            browser.close()


def load_times(items: int = 10_000, repeat: int = 3) -> list[float]:
    """Seconds to interactive of `repeat` fresh loads of a page with an `items` fan-out."""
    from playwright.sync_api import sync_playwright

    with serve_canned(items) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            times = []
            for _ in range(repeat):
                context = browser.new_context()
                context.add_init_script("sessionStorage.setItem('shoal.token', 'bench')")
                times.append(_interactive_ms(context.new_page(), url) / 1000)
                context.close()
            return times
        finally:
            browser.close()


def time_to_interactive(items: int = 10_000, repeat: int = 3) -> float:
    """The median of `load_times`: what bench/server.py prints beside its own figures."""
    return statistics.median(load_times(items, repeat))


def report(items: int = 10_000, repeat: int = 3, peer_items: int = 10) -> float:
    """Print the median time to interactive, its spread, and its ratio to the peer's;
    returns the median (bench/server.py prints it beside its own figures)."""
    big = load_times(items, repeat)
    small = load_times(peer_items, repeat)
    median, peer = statistics.median(big), statistics.median(small)
    verdict = "OK" if median <= TARGET_SECONDS else "OVER TARGET"
    print(
        f"time to interactive, {items:,}-item fan-out: {median:.2f} s "
        f"(min {min(big):.2f}, max {max(big):.2f}; {repeat} loads); "
        f"{peer_items}-item peer {peer:.2f} s, ratio {median / peer:.2f}x; "
        f"target <= {TARGET_SECONDS:.1f} s: {verdict} "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    return median


def report_list(rows: int = 1000, peer_rows: int = 10) -> float:
    """Print how long the list takes to show `rows` Workflows, against `peer_rows`."""
    big, small = list_seconds(rows), list_seconds(peer_rows)
    print(
        f"workflow list, {rows:,} rows shown: {big:.2f} s; {peer_rows}-row peer {small:.2f} s, "
        f"ratio {big / small:.2f}x (load average {os.getloadavg()[0]:.1f})"
    )
    return big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1000, help="Workflows in the list")
    args = parser.parse_args()
    report(args.items, args.repeat)
    report_list(args.rows)


if __name__ == "__main__":
    main()
