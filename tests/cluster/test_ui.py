"""The dashboard in a real browser: Debian's headless chromium, driven by Playwright,
against `shoal server` on the real control plane with the session's operator.

A user logs in with a Kubernetes token (a ServiceAccount's, whose Role allows its own
namespace only), sees the list, opens a running workflow, sees its DAG with every node,
watches a log line and a progress change arrive live, presses Stop and sees Stopped, which
`kubectl` sees too. With SHOAL_UPDATE_SCREENSHOTS=1 the tests write docs/images/*.png
(docs/dashboard.md shows them); otherwise they write nothing in the tree.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import (
    GROUP,
    REPO,
    VERSION,
    create_workflow,
    custom,
    get_workflow,
    wait_workflow,
)
from tests.cluster.test_server import WRITE, _user, running_server
from tests.support.browser import chromium, screenshot

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]

WORKER = "ghcr.io/shoal-dev/worker:0.1.0"
LIVE_SECONDS = 60_000
"""Milliseconds any one live change may take to reach the page (pods start slowly under
load; each change itself is due within a few seconds)."""
# A node that logs a numbered line and reports its progress every second, for 99 s at most.
TALK = (
    'for i in $(seq 1 99); do echo "tick $i"; '
    'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN {\\"type\\":\\"progress\\",\\"percent\\":$i,'
    '\\"message\\":\\"step $i\\"}"; sleep 1; done'
)


def _live(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "labels": {"app": "ui-test"}},
        "spec": {
            "image": WORKER,
            "nodes": [
                {"name": "talk", "command": ["sh", "-c", TALK]},
                {"name": "after", "command": ["true"], "dependsOn": ["talk"]},
                {
                    "name": "cleanup",
                    "command": ["true"],
                    "dependsOn": ["talk"],
                    "runPolicy": "always",
                },
            ],
        },
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium from Debian (`make browser`); never a downloaded browser."""
    with chromium() as launched:
        yield launched


def test_log_in_watch_a_run_live_and_stop_it(
    browser: Any, k8s_api: Any, kubeconfig: Path, namespace: str
) -> None:
    token = _user(k8s_api, namespace, "viewer", WRITE, writer=True)
    create_workflow(k8s_api, namespace, _live("ui-live"))
    create_workflow(
        k8s_api,
        namespace,
        _live("ui-other")
        | {"spec": {"image": WORKER, "nodes": [{"name": "one", "command": ["true"]}]}},
    )
    with running_server(kubeconfig) as (url, log):
        context = browser.new_context(viewport={"width": 1360, "height": 820})
        try:
            _drive(context.new_page(), url, token, namespace, k8s_api)
        finally:
            context.close()  # its open log stream would hold the server's shutdown
        # The token never reached the server's log.
        assert token not in log.read_text()


def _drive(page: Any, url: str, token: str, namespace: str, k8s_api: Any) -> None:
    from playwright.sync_api import expect

    page.goto(url + "/")
    # Log in: the token goes into the form, and nowhere else.
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    page.fill("#filters input[name=namespace]", namespace)
    page.click("#filters button[type=submit]")
    # The list: both workflows, with their phases.
    live_row = page.locator('#workflows tr[data-name="ui-live"]')
    expect(live_row).to_be_visible(timeout=LIVE_SECONDS)
    expect(page.locator('#workflows tr[data-name="ui-other"]')).to_be_visible()
    expect(live_row).to_have_attribute("data-phase", "Running", timeout=LIVE_SECONDS)
    screenshot(page, "dashboard-list")
    # The workflow page: the DAG with every node of the spec, and its edges.
    live_row.locator("a").click()
    nodes = page.locator("svg.dag g.node")
    expect(nodes).to_have_count(3, timeout=LIVE_SECONDS)
    drawn = {nodes.nth(i).get_attribute("data-node") for i in range(3)}
    assert drawn == {"talk", "after", "cleanup"}
    expect(page.locator("svg.dag path.edge")).to_have_count(2)
    expect(page.locator('g.node[data-node="cleanup"]')).to_contain_text("runPolicy: always")
    talk = page.locator('g.node[data-node="talk"]')
    expect(talk).to_have_attribute("data-phase", "Running", timeout=LIVE_SECONDS)
    # The node panel: a log line and a progress change arrive while we watch.
    talk.click()
    log_box = page.locator("#node-log")
    expect(log_box).to_contain_text("tick", timeout=LIVE_SECONDS)
    seen = max(int(w) for w in log_box.inner_text().split() if w.isdigit())
    expect(log_box).to_contain_text(f"tick {seen + 2}", timeout=LIVE_SECONDS)
    progress = page.locator("#node-progress")
    expect(progress).not_to_have_attribute("data-progress", "", timeout=LIVE_SECONDS)
    first = float(progress.get_attribute("data-progress") or 0)
    page.wait_for_function(
        "p => Number(document.getElementById('node-progress')?.dataset.progress) > p",
        arg=first,
        timeout=LIVE_SECONDS,
    )
    # Protocol messages read as words, and their attempt token never reaches the page.
    expect(log_box).to_contain_text("» progress")
    assert "@shoal/2:" not in log_box.inner_text()
    screenshot(page, "dashboard-workflow")
    # Stop: the page shows Stopped, and Kubernetes has the request.
    page.click('button[data-action="stop"]')
    expect(page.locator("#action-note")).to_contain_text("stop requested")
    assert get_workflow(k8s_api, namespace, "ui-live")["spec"]["stop"] is True
    expect(page.locator("#wf-phase")).to_have_text("Stopped", timeout=LIVE_SECONDS)
    wait_workflow(k8s_api, namespace, "ui-live", phases={"Stopped"}, timeout=30)
    expect(page.locator('button[data-action="stop"]')).to_be_hidden()
    assert token not in page.url


def test_cron_workflows_page_lists_and_suspends(
    browser: Any, k8s_api: Any, kubeconfig: Path, namespace: str
) -> None:
    from playwright.sync_api import expect

    token = _user(k8s_api, namespace, "cron-user", WRITE, writer=True)
    cron = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 3 * * *",
            "workflowSpec": {"image": WORKER, "nodes": [{"name": "one", "command": ["true"]}]},
        },
    }
    custom(k8s_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "cronworkflows", cron
    )
    with running_server(kubeconfig) as (url, _):
        context = browser.new_context(viewport={"width": 1360, "height": 600})
        try:
            page = context.new_page()
            page.goto(f"{url}/#/crons?namespace={namespace}")
            # A token the API server refuses: back to the form, which says why.
            page.fill("#token", "not-a-token")
            page.click("#login button[type=submit]")
            expect(page.locator("#login-error")).to_be_visible(timeout=LIVE_SECONDS)
            page.fill("#token", token)
            page.click("#login button[type=submit]")
            row = page.locator('#crons tr[data-name="nightly"]')
            expect(row).to_contain_text("0 3 * * *", timeout=LIVE_SECONDS)
            expect(row.locator("td").nth(3)).to_have_text("no")
            screenshot(page, "dashboard-crons")
            row.get_by_role("button", name="Suspend").click()
            expect(row.locator("td").nth(3)).to_have_text("yes", timeout=LIVE_SECONDS)
            spec = custom(k8s_api).get_namespaced_custom_object(
                GROUP, VERSION, namespace, "cronworkflows", "nightly"
            )["spec"]
            assert spec["suspend"] is True
            row.get_by_role("button", name="Resume").click()
            expect(row.locator("td").nth(3)).to_have_text("no", timeout=LIVE_SECONDS)
            row.get_by_role("link", name="nightly").click()
            expect(page.locator("#cron-detail")).to_contain_text('"schedule": "0 3 * * *"')
        finally:
            context.close()


def test_bench_ui_browser_prints_time_to_interactive(browser: Any) -> None:
    """The documented bench command, on a smaller fan-out: it loads the page in chromium
    and prints a time and its ratio to the peer, and the list's time for its rows."""
    argv = [sys.executable, "bench/ui_browser.py", "--items", "2000", "--repeat", "1"]
    argv += ["--rows", "200"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(
        r"time to interactive, 2,000-item fan-out: [\d.]+ s .*10-item peer [\d.]+ s, "
        r"ratio [\d.]+x; target <= 2\.0 s: (OK|OVER TARGET)",
        done.stdout,
    ), done.stdout
    assert re.search(r"workflow list, 200 rows shown: [\d.]+ s; 10-row peer", done.stdout)


def test_a_10000_item_fan_out_opens_as_a_virtualized_list(browser: Any) -> None:
    """The bench's canned 10,000-item fan-out through the real app: the DAG box shows the
    counts, the item list holds only the rows in view, and its last item and a failed one
    are reached by scrolling, each with its state."""
    from playwright.sync_api import expect

    sys.path.insert(0, str(REPO / "bench"))
    from ui_browser import NAME, NAMESPACE, serve_canned

    with serve_canned(10_000) as url:
        context = browser.new_context(viewport={"width": 1360, "height": 720})
        context.add_init_script("sessionStorage.setItem('shoal.token', 'canned')")
        try:
            page = context.new_page()
            page.goto(f"{url}/#/workflow/{NAMESPACE}/{NAME}")
            work = page.locator('g.node[data-node="work"]')
            expect(work).to_contain_text("10000 items · ✓7000 ▶50 ✗5", timeout=LIVE_SECONDS)
            work.click()
            items = page.locator("#items .item")
            expect(items.first).to_contain_text("#0Succeeded")
            assert items.count() < 100, "every item in the DOM: the list is not virtualized"
            box = page.locator("#items")
            box.evaluate("b => { b.scrollTop = 7000 * 22; }")
            expect(page.locator('#items .item[data-item="7000"]')).to_contain_text(
                "Failed: item 7000: exit code 1"
            )
            box.evaluate("b => { b.scrollTop = b.scrollHeight; }")
            last = page.locator('#items .item[data-item="9999"]')
            expect(last).to_be_visible()
            assert items.count() < 100
            screenshot(page, "dashboard-fanout")
        finally:
            context.close()
