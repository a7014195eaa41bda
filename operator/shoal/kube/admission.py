"""The validating admission webhook: HTTPS that answers the API server's AdmissionReviews.

A small aiohttp server of its own rather than kopf's admission support: kopf matches
review requests against resources it discovered (which Shoal turns off for named
namespaces), and a failure of its server is a failure of the operator. Here the server is
a separate task: whatever a request does, the worst outcome is an HTTP error for that one
request (the API server then applies the configuration's `failurePolicy`), never a stall
or an exit of the reconciling. Bounds: the body size (aiohttp refuses larger bodies with
413), nesting (cut while decoding), CEL (the compile's own budget and sandbox), the number
of compiles at once, and a deadline under the API server's `timeoutSeconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from shoal.admission_check import Decision, MalformedReview, Review, parse_review
from shoal.api.workflow import WorkflowSpec
from shoal.core.templates import Template, TemplateKey, uses_templates
from shoal.core.validation import InvalidWorkflow
from shoal.kube.templates import spec_of
from shoal.manifests import Templates

TemplateReader = Callable[[str, WorkflowSpec], Awaitable[dict[TemplateKey, Template]]]
"""Reads the templates a spec uses in a namespace (`kube/templates.fetch_templates`)."""

__all__ = ["PATH", "WebhookConfig", "load_tls", "serve"]

log = logging.getLogger("shoal.admission")
PATH = "/validate"
MAX_BODY_BYTES = 4 * 1024 * 1024
"""An AdmissionReview holds the object and, on UPDATE, its old version: etcd stores at
most 1.5 MiB each, so twice that plus the envelope fits."""
DECISION_SECONDS = 8.0
"""Answer or give up within this; under the chart's `timeoutSeconds` (10)."""
CONCURRENT_COMPILES = 2
"""Compiles running at once; a thread that outlives its deadline keeps its slot until it
ends, so slow requests can never pile up threads."""


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Where the webhook listens and the directory with its `tls.crt` and `tls.key`."""

    cert_dir: Path
    port: int = 9443
    host: str = "0.0.0.0"


def load_tls(cert_dir: Path) -> ssl.SSLContext:
    """The server's TLS context, from `tls.crt` and `tls.key` (a kubernetes.io/tls Secret)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_dir / "tls.crt", cert_dir / "tls.key")
    return context


class Reviewer:
    """Decides reviews off the event loop, a bounded number at a time."""

    def __init__(
        self, slots: int = CONCURRENT_COMPILES, templates: TemplateReader | None = None
    ) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._templates = templates

    async def decide(self, review: Review, deadline: float) -> Decision:
        """The decision, or TimeoutError when no slot frees up or the compile is too slow."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout_at(deadline):
            await self._slots.acquire()
        try:
            async with asyncio.timeout_at(deadline):
                templates = await self._read_templates(review)
        except InvalidWorkflow as err:  # a template that does not parse
            self._slots.release()
            return Decision(tuple(p.describe(None) for p in err.problems))
        except BaseException:
            self._slots.release()
            raise
        future = loop.run_in_executor(None, review.decide, templates)
        future.add_done_callback(lambda _: self._slots.release())
        async with asyncio.timeout_at(deadline):
            return await asyncio.shield(future)

    async def _read_templates(self, review: Review) -> Templates | None:
        """The templates the object names (and theirs), from the API server."""
        specs = [s for s in (spec_of(review.obj), spec_of(review.old)) if s is not None]
        if self._templates is None or not any(uses_templates(s) for s in specs):
            return None
        found: dict[TemplateKey, Template] = {}
        for spec in specs:
            found |= await self._templates(review.namespace, spec)
        return found


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def make_app(reviewer: Reviewer, decision_seconds: float = DECISION_SECONDS) -> web.Application:
    """The aiohttp application: POST PATH with an AdmissionReview."""

    async def validate(request: web.Request) -> web.Response:
        deadline = asyncio.get_running_loop().time() + decision_seconds
        try:
            review = parse_review(await request.read())
        except MalformedReview as err:
            return _json({"error": str(err)}, status=400)
        try:
            decision = await reviewer.decide(review, deadline)
        except TimeoutError:
            log.warning(
                "no decision on %s %s/%s in time", review.kind, review.namespace, review.name
            )
            return _json({"error": "no decision in time"}, status=503)
        except Exception:  # never the operator's problem: the failurePolicy decides
            log.exception("reviewing %s %s/%s failed", review.kind, review.namespace, review.name)
            return _json({"error": "internal error"}, status=500)
        if not decision.allowed:
            # Counts only: problems quote the spec, which may hold values not meant for logs.
            log.info(
                "refused %s %s %s/%s: %d problem(s)",
                review.operation,
                review.kind,
                review.namespace,
                review.name,
                len(decision.problems),
            )
        return _json(review.response(decision))

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(PATH, validate)
    return app


@contextlib.asynccontextmanager
async def serve(config: WebhookConfig | None) -> AsyncIterator[None]:
    """Serve the webhook for the duration of the block; nothing when `config` is None."""
    if config is None:
        yield
        return
    runner = web.AppRunner(make_app(Reviewer(templates=_template_reader())), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, ssl_context=load_tls(config.cert_dir))
        try:
            await site.start()
        except OSError as err:
            # Reconciling goes on: the API server applies the failurePolicy meanwhile.
            log.error(
                "admission webhook not served: cannot listen on port %d: %s", config.port, err
            )
        else:
            log.info("admission webhook on https://%s:%d%s", config.host, config.port, PATH)
        yield
    finally:
        await runner.cleanup()


def _template_reader() -> TemplateReader:
    """Templates read with the operator's own credentials, connected on first use."""
    from shoal.kube.api import KubeApi
    from shoal.kube.templates import fetch_templates

    connected: list[KubeApi] = []

    async def read(namespace: str, spec: WorkflowSpec) -> dict[TemplateKey, Template]:
        if not connected:
            connected.append(KubeApi.connect())
        return await fetch_templates(connected[0], namespace, spec)

    return read
