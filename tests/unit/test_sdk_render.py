"""Rendering, CronWorkflows and submission of SDK resources: the YAML carries apiVersion
and kind, reads back exactly as kubectl would send it, and what is created is that YAML."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.api.workflow import Workflow as WorkflowModel
from shoal.sdk import CronWorkflow, SdkError, Workflow, parse_yaml, submit_async, to_yaml
from tests.local.conftest import EXAMPLES

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def wf_with_args(args: dict[str, Any]) -> Workflow:
    wf = Workflow("round-trip", image="img:1")
    wf.job("only", "lives-in-the-image", **args)
    return wf


def test_the_yaml_starts_with_api_version_and_kind() -> None:
    text = to_yaml(wf_with_args({"x": 1}))
    assert text.splitlines()[:2] == ["apiVersion: shoal.dev/v1alpha1", "kind: Workflow"]


@settings(max_examples=100, deadline=None)
@given(args=st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), json_values))
def test_render_parse_render_is_exact_and_keeps_every_value(args: dict[str, Any]) -> None:
    text = to_yaml(wf_with_args(args))
    parsed = parse_yaml(text)
    assert to_yaml(parsed) == text
    assert isinstance(parsed, WorkflowModel)
    assert parsed.spec.nodes[0].args == (args or None)


def test_strings_kubectl_reads_differently_are_quoted() -> None:
    tricky = {"yes_no": ["y", "n", "on", "off", "0x10", "1_000", "1e3", "~", "multi\nline"]}
    text = to_yaml(wf_with_args(tricky))
    assert '- "y"' in text
    assert '- "0x10"' in text
    parsed = parse_yaml(text)
    assert isinstance(parsed, WorkflowModel)
    assert parsed.spec.nodes[0].args == tricky


def test_a_cron_workflow_in_code_renders_validates_and_round_trips() -> None:
    run = Workflow(image="img:1", parameters={"region": "eu"})
    run.command("stamp", ["echo", f"{run.params['scheduledTime']} {run.params['region']}"])
    cron = CronWorkflow(
        "nightly", run, schedule="0 3 * * *", timezone="Europe/Paris", concurrency_policy="Forbid"
    )
    text = cron.to_yaml()
    assert text.splitlines()[:2] == ["apiVersion: shoal.dev/v1alpha1", "kind: CronWorkflow"]
    data = cron.to_dict()
    assert data["spec"]["schedule"] == "0 3 * * *"
    assert data["spec"]["workflowSpec"]["nodes"][0]["name"] == "stamp"
    assert to_yaml(parse_yaml(text)) == text
    cron.validate()  # scheduledTime is a run parameter of every trigger
    with pytest.raises(SdkError, match=r"cronworkflow 'bad': schedule"):
        CronWorkflow("bad", run, schedule="61 * * * *").build()


def test_the_example_script_prints_the_rendered_manifest() -> None:
    # docs/sdk.md: `python examples/catalog_sdk.py`
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "catalog_sdk.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert parse_yaml(done.stdout) == parse_yaml((EXAMPLES / "catalog.yaml").read_text())


def test_main_prints_templates_then_the_workflow_each_a_document(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # examples/templates_sdk.py: `workflow.main(templates=templates)` without --run.
    from shoal.sdk import WorkflowTemplate

    template = WorkflowTemplate("greeting", image="busybox:1.36")
    template.command("hi", ["echo", "hi"])
    workflow = Workflow("greetings", image="busybox:1.36")
    workflow.command("bye", ["echo", "bye"])
    workflow.main([], templates=[template])
    assert capsys.readouterr().out == template.to_yaml() + "---\n" + workflow.to_yaml()
    workflow.main(["--other"])
    assert capsys.readouterr().out == workflow.to_yaml()


def test_importing_the_sdk_needs_no_operator_dependency() -> None:
    probe = (
        "import json, sys; import shoal.sdk; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert loaded.isdisjoint({"kopf", "kubernetes", "httpx", "aiohttp", "asyncpg", "boto3"})


class FakeApi:
    """Records requests; the workflow reaches `phases` one GET at a time."""

    def __init__(self, phases: list[str]) -> None:
        self.phases = phases
        self.calls: list[tuple[str, str, Any]] = []

    async def request(self, method: str, path: str, *, body: Any = None) -> dict[str, Any]:
        self.calls.append((method, path, body))
        return {**body, "metadata": {**body["metadata"], "name": "made"}}

    async def get(self, path: str) -> dict[str, Any]:
        self.calls.append(("GET", path, None))
        phase = self.phases.pop(0) if self.phases else "Running"
        return {"metadata": {"name": "made"}, "status": {"phase": phase}}


def test_submit_creates_the_rendered_workflow_with_the_parameters_merged() -> None:
    wf = Workflow(generate_name="sdk-", image="img:1", parameters={"region": "eu"})
    wf.command("hi", ["echo", f"{wf.params['region']}"])
    api = FakeApi([])
    created = asyncio.run(submit_async(wf, {"region": "us"}, namespace="team", api=api))  # type: ignore[arg-type]
    method, path, body = api.calls[0]
    assert (method, path) == ("POST", "/apis/shoal.dev/v1alpha1/namespaces/team/workflows")
    assert body["apiVersion"] == "shoal.dev/v1alpha1"
    assert body["kind"] == "Workflow"
    assert body["metadata"] == {"generateName": "sdk-", "namespace": "team"}
    assert body["spec"]["parameters"] == {"region": "us"}
    assert created["metadata"]["name"] == "made"
    assert len(api.calls) == 1  # no watch: nothing more


def test_submit_with_watch_returns_the_finished_workflow() -> None:
    wf = Workflow("w", image="img:1")
    wf.command("hi", ["true"])
    api = FakeApi(["Pending", "Running", "Failed"])
    done = asyncio.run(submit_async(wf, watch=True, poll_seconds=0, api=api))  # type: ignore[arg-type]
    assert done["status"]["phase"] == "Failed"
    assert [c[0] for c in api.calls] == ["POST", "GET", "GET", "GET"]
    assert api.calls[-1][1] == "/apis/shoal.dev/v1alpha1/namespaces/default/workflows/made"
    with pytest.raises(TimeoutError, match="workflow 'made' still Pending after 0s"):
        asyncio.run(submit_async(wf, watch=True, watch_seconds=0, api=FakeApi([])))  # type: ignore[arg-type]


def test_submit_refuses_what_cannot_be_created() -> None:
    nameless = Workflow(image="img:1")
    nameless.command("hi", ["true"])
    with pytest.raises(SdkError, match="set a name"):
        asyncio.run(submit_async(nameless, api=FakeApi([])))  # type: ignore[arg-type]
    placed = Workflow("w", namespace="a", image="img:1")
    placed.command("hi", ["true"])
    with pytest.raises(SdkError, match="namespace 'a' differs from 'b'"):
        asyncio.run(submit_async(placed, namespace="b", api=FakeApi([])))  # type: ignore[arg-type]


def test_a_cron_workflow_is_created_as_a_cron_workflow() -> None:
    run = Workflow(image="img:1")
    run.command("hi", ["true"])
    api = FakeApi([])
    asyncio.run(submit_async(CronWorkflow("c", run, schedule="@hourly"), api=api, watch=True))  # type: ignore[arg-type]
    assert [(m, p) for m, p, _ in api.calls] == [
        ("POST", "/apis/shoal.dev/v1alpha1/namespaces/default/cronworkflows")
    ]
