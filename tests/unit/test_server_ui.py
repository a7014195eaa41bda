"""The dashboard's server side without a cluster: its page and assets, the CSP they keep,
and the CSRF guard on browser writes (refused before Kubernetes is ever asked).

The Kubernetes address is unreachable on purpose: a write the guard lets through gets a
502 from the unreachable API server, one it refuses gets a 403 and never gets that far.
The browser itself is driven in tests/cluster/test_ui.py.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from shoal.server.app import create_app
from shoal.server.identity import AuthMode, Cluster
from shoal.server.ui_csrf import refusal
from shoal.server.ui_static import LAYOUT_LIBRARY, UI_DIR

UNREACHABLE = Cluster("https://127.0.0.1:9", False, AuthMode.CLIENT)
TOKEN = {"Authorization": "Bearer a-token"}
HOST = "testserver"
STOP = "/api/v1/workflows/ns/wf/stop"


@pytest.fixture(scope="module")
def api() -> TestClient:
    return TestClient(create_app(UNREACHABLE))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data.strip()


def test_the_page_is_served_at_root_with_no_inline_script_or_style(api: TestClient) -> None:
    response = api.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    parser = _Tags()
    parser.feed(response.text)
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts, "the page loads its script"
    assert all(a.get("src", "").startswith("/ui/") for a in scripts)
    assert parser.script_text == "", "an inline script would be blocked by the CSP"
    for tag, attrs in parser.tags:
        assert "style" not in attrs, f"<{tag}> has an inline style"
        assert not [k for k in attrs if k.startswith("on")], f"<{tag}> has an inline handler"
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not value.startswith(("http:", "https:", "//")), f"foreign {value}"


def test_every_module_the_page_imports_is_served(api: TestClient) -> None:
    """Follow the ES module imports from app.js: each resolves to a shipped file, and the
    only third-party one is the layout library `make ui` copies from npm."""
    seen: set[str] = set()
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name.startswith("vendor/"):
            assert UI_DIR / name == LAYOUT_LIBRARY
            continue
        response = api.get(f"/ui/{name}")
        assert response.status_code == 200, name
        assert "javascript" in response.headers["content-type"]
        for target in re.findall(r'^import .* from "\./([^"]+)";$', response.text, re.M):
            todo.append(target)
    assert {"api.js", "list.js", "workflow.js", "dag.js", "panel.js", "vendor/dagre.esm.js"} <= seen
    pinned = json.loads((UI_DIR.parents[3] / "ui" / "package-lock.json").read_text())
    assert pinned["packages"]["node_modules/@dagrejs/dagre"]["version"] == "3.1.3"


def test_the_token_is_kept_in_session_storage_only() -> None:
    """Never a cookie, never localStorage (it outlives the tab), never in a URL."""
    for path in UI_DIR.glob("*.js"):
        text = path.read_text()
        assert "document.cookie" not in text, path.name
        assert "localStorage" not in text, path.name
        assert not re.search(r"[?&]token=", text), path.name
    api_js = (UI_DIR / "api.js").read_text()
    assert "sessionStorage.setItem(TOKEN_KEY" in api_js
    assert "Authorization = `Bearer ${t}`" in api_js


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),  # curl, scripts, the CLI: no ambient credential to forge
        ({"origin": f"http://{HOST}", "x-shoal-request": "1"}, False),
        ({"origin": f"http://{HOST}"}, True),  # the dashboard always sends the header
        ({"origin": "https://evil.example", "x-shoal-request": "1"}, True),
        ({"origin": "null", "x-shoal-request": "1"}, True),
        ({"sec-fetch-site": "cross-site", "x-shoal-request": "1"}, True),
        ({"sec-fetch-site": "same-origin", "x-shoal-request": "1"}, False),
        ({"sec-fetch-site": "same-origin"}, True),
    ],
)
def test_csrf_refusal_rules(headers: dict[str, str], refused: bool) -> None:
    assert (refusal({"host": HOST, **headers}) is not None) is refused


def test_a_cross_site_write_is_refused_before_kubernetes_is_asked(api: TestClient) -> None:
    forged = api.post(STOP, headers={**TOKEN, "Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert forged.json()["code"] == "Forbidden"
    assert "Origin" in forged.json()["message"]
    assert forged.headers["x-frame-options"] == "DENY"  # security headers on refusals too
    bare = api.delete("/api/v1/workflows/ns/wf", headers={**TOKEN, "Origin": f"http://{HOST}"})
    assert bare.status_code == 403
    assert "X-Shoal-Request" in bare.json()["message"]
    # The dashboard's own request, and a non-browser client, get through to Kubernetes
    # (unreachable here: 502).
    own = api.post(STOP, headers={**TOKEN, "Origin": f"http://{HOST}", "X-Shoal-Request": "1"})
    assert own.status_code == 502
    assert api.post(STOP, headers=TOKEN).status_code == 502
    # Reads are not state-changing: a foreign Origin on a GET is not the guard's business.
    read = api.get("/api/v1/workflows/ns/wf", headers={**TOKEN, "Origin": "https://x.example"})
    assert read.status_code == 502


def test_a_protocol_line_loses_its_attempt_token_before_any_response() -> None:
    from shoal.server.log_lines import shown

    token = "aa799eb3fa8f395cc3995f5144cd9663"
    line = f'@shoal/2:{token} {{"type":"progress","percent":7}}'
    assert shown(line) == '@shoal/2 {"type":"progress","percent":7}'
    assert token not in shown(f"@shoal/2:{token}")
    assert shown("tick 7") == "tick 7"
    assert shown('@shoal/2 {"type":"log"}') == '@shoal/2 {"type":"log"}'
