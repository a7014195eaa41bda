"""CSRF protection for state-changing requests that come from a browser.

The API takes credentials only from the `Authorization` header, which a browser never
attaches to another site's request on its own, so a forged form has nothing to ride on.
This is the second lock the dashboard adds (docs/dashboard.md): a POST, PUT, PATCH or
DELETE that a browser sends (it carries `Origin` or `Sec-Fetch-Site`) must come from the
server's own origin *and* carry `X-Shoal-Request: 1`, a header no cross-site form can set
and no cross-site script can send without a CORS preflight this server never answers.
Clients that are not browsers (curl, scripts, the CLI) send neither header and pass.
Plain ASGI, so streamed responses are not buffered.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CSRF_HEADER", "STATE_CHANGING", "CsrfGuard", "refusal"]

CSRF_HEADER = "x-shoal-request"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SAME_SITE_FETCH = frozenset({"same-origin", "none"})


def refusal(headers: dict[str, str]) -> str | None:
    """Why a state-changing request with these (lower-case) headers is refused, or None."""
    origin = headers.get("origin")
    fetch_site = headers.get("sec-fetch-site")
    if origin is None and fetch_site is None:
        return None  # not a browser: nothing ambient to forge
    if fetch_site is not None and fetch_site not in _SAME_SITE_FETCH:
        return f"cross-site request refused (Sec-Fetch-Site: {fetch_site})"
    if origin is not None:
        host = headers.get("host", "")
        if origin == "null" or urlsplit(origin).netloc != host:
            return "cross-origin request refused: Origin does not match this server"
    if headers.get(CSRF_HEADER) != "1":
        return f"a browser's state-changing request must carry {CSRF_HEADER.title()}: 1"
    return None


class CsrfGuard:
    """Refuses, with a 403 in the API's error shape, what `refusal` refuses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        reason = refusal(headers)
        if reason is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"code": "Forbidden", "message": reason}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
