"""`shoal run --ui` in a real browser (Debian's chromium through Playwright): the demo's
catalog run, opened without a token, listed, and drawn with every node of its DAG.

With SHOAL_UPDATE_SCREENSHOTS=1 it writes docs/images/local-run.png, the README's
screenshot; otherwise it writes nothing in the tree.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import yaml

from tests.local.conftest import EXAMPLES, REPO, SHOAL, wait_for
from tests.local.test_run_ui import dashboard_url
from tests.support.browser import chromium, screenshot

SHOWN_MS = 60_000
"""Milliseconds the page may take to show what the run's API already has."""


def test_the_demo_run_in_the_browser_without_a_token(tmp_path: Path) -> None:
    spec = yaml.safe_load((EXAMPLES / "catalog.yaml").read_text())
    names = {node["name"] for node in spec["spec"]["nodes"]}
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [*SHOAL, "run", "--plain", "--ui-keep", "--import", "jobs", "examples/catalog.yaml"],
            stdout=err,
            stderr=err,
            cwd=REPO,
        )
    try:
        url, _ = dashboard_url(stderr)
        wait_for(lambda: "dashboard still at" in stderr.read_text(), 120, "the run's end")
        with chromium() as browser:
            from playwright.sync_api import expect

            page = browser.new_page(viewport={"width": 1360, "height": 760})
            page.goto(url)
            row = page.locator('#workflows tr[data-name="catalog-integration"]')
            expect(row).to_have_attribute("data-phase", "Succeeded", timeout=SHOWN_MS)
            assert page.locator("#token").count() == 0, "a local run asks for no token"
            row.locator("a").click()
            nodes = page.locator("svg.dag g.node")
            expect(nodes).to_have_count(len(names), timeout=SHOWN_MS)
            drawn = {nodes.nth(i).get_attribute("data-node") for i in range(len(names))}
            assert drawn == names
            expect(page.locator("#wf-phase")).to_have_text("Succeeded")
            screenshot(page, "local-run")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0
