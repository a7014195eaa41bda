"""The assembled operator: what kopf watches, that it can call every handler, and which
per-event log lines are demoted."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any, cast

import kopf
from kopf._cogs.structs import bodies, patches, references
from kopf._core.actions import invocation
from kopf._core.intents import causes

from shoal.app import HandledEventsAtDebug, build_registry, cleanup
from shoal.kube.api import KubeApi
from shoal.kube.metrics import Metrics
from shoal.operator_context import OperatorConfig, OperatorMemo

WORKFLOWS = references.Resource("shoal.dev", "v1alpha1", "workflows", namespaced=True)


async def test_kopf_calls_each_event_handler_with_its_own_arguments() -> None:
    # Handlers are bound to the operator's shared state as their first argument; a name
    # that kopf also passes (`memo`, `runtime`, ...) would fail on every event.
    registry = build_registry(OperatorMemo(OperatorConfig(namespaces=["team-*"]), Metrics()))
    obj: dict[str, Any] = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "w", "namespace": "team-a", "uid": "u", "labels": {}},
        "status": {"phase": "Succeeded"},
    }
    names = []
    for handler in registry._watching._handlers:
        cause = causes.WatchingCause(
            logger=logging.getLogger("test"),
            indices={},  # type: ignore[arg-type]
            memo=kopf.Memo(),
            resource=WORKFLOWS,
            patch=patches.Patch(),
            body=bodies.Body(obj),  # type: ignore[arg-type]
            type="MODIFIED",
            event={"type": "MODIFIED", "object": obj},  # type: ignore[typeddict-item]
        )
        extra = {
            "param": None,
            "retry": 0,
            "started": datetime.datetime.now(datetime.UTC),
            "runtime": datetime.timedelta(0),
        }
        await invocation.invoke(handler.fn, kwargsrc=cause, kwargs=extra)
        names.append(handler.fn.__name__)
    assert sorted(names) == [
        "cron_event",
        "pod_event",
        "run_event",
        "upstream_event",
        "workflow_event",
    ]


def pod_handlers(namespaces: list[str]) -> list[str]:
    registry = build_registry(OperatorMemo(OperatorConfig(namespaces=namespaces), Metrics()))
    return [h.fn.__name__ for h in registry._watching._handlers if h.selector.any_name == "pods"]


def test_kopf_watches_pods_only_for_namespace_patterns() -> None:
    assert pod_handlers(["team-a"]) == []
    assert pod_handlers([]) == []
    assert pod_handlers(["team-*"]) == ["pod_event"]


def test_handled_event_lines_are_debug_and_other_lines_stay() -> None:
    logger = logging.getLogger("test.kopf.objects")
    logger.setLevel(logging.INFO)
    logger.addFilter(HandledEventsAtDebug())
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    logger.propagate = False
    logger.info("Handler 'workflow_event' succeeded.")
    logger.info("Handler 'workflow_event' is invoked.")
    logger.warning("Handler 'x' failed temporarily.")
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("INFO", "Handler 'workflow_event' is invoked."),
        ("WARNING", "Handler 'x' failed temporarily."),
    ]
    logger.setLevel(logging.DEBUG)
    logger.info("Handler 'workflow_event' succeeded.")
    assert (records[-1].levelname, records[-1].levelno) == ("DEBUG", logging.DEBUG)


def test_request_lines_of_the_http_client_are_debug() -> None:
    logger = logging.getLogger("httpx.unit")
    logger.setLevel(logging.INFO)
    logger.addFilter(HandledEventsAtDebug())
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    logger.propagate = False
    logger.info('HTTP Request: %s %s "%s"', "GET", "https://api/pods", "HTTP/1.1 200 OK")
    logger.info("connection pool closed")
    assert [r.getMessage() for r in records] == ["connection pool closed"]


async def test_cleanup_lets_each_runner_write_its_status_before_closing_the_api() -> None:
    # kopf runs cleanup before its daemons have stopped: a runner still going would
    # otherwise meet a closed client and lose what it decided since its last write.
    events: list[str] = []

    class Api:
        async def merge_patch(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
            events.append("status written")
            return {}

        async def close(self) -> None:
            events.append("api closed")

    api, waiting = Api(), asyncio.Event()

    async def runner() -> None:
        try:
            waiting.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await api.merge_patch("/status", {})  # its last status write
            raise

    shared = OperatorMemo(OperatorConfig(), Metrics())
    shared.api = cast(KubeApi, api)
    task = asyncio.create_task(runner())
    shared.running.add(task)
    await waiting.wait()
    await cleanup(shared)
    assert events == ["status written", "api closed"]
    assert task.cancelled()
