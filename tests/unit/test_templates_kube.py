"""Templates on the cluster path, against a fake API server: the operator resolves once
and records the result (kube/templates.frozen_body), and the admission decision refuses
a reference to a template that is not there (admission_check, kube/admission.Reviewer)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from shoal.admission_check import Review, review
from shoal.core.templates import Template, TemplateKey
from shoal.kube.admission import Reviewer
from shoal.kube.api import ApiError
from shoal.kube.templates import RESOLVED_SPEC, fetch_templates, frozen_body, spec_of

NS = "team"
TEMPLATE_PATH = f"/apis/shoal.dev/v1alpha1/namespaces/{NS}/workflowtemplates/greet"


def template(message: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "greet", "namespace": NS, "resourceVersion": version, "uid": "t-1"},
        "spec": {
            "parameters": {"who": "world"},
            "nodes": [{"name": "say", "command": ["echo", message, "${{ params.who }}"]}],
        },
    }


WORKFLOW: dict[str, Any] = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "hello", "namespace": NS, "uid": "w-1"},
    "spec": {"workflowTemplateRef": {"name": "greet"}, "parameters": {"who": "team"}},
}


class FakeApi:
    """GETs from a dict of objects; merge patches recorded (and applied to `objects`)."""

    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.gets: list[str] = []
        self.patches: list[tuple[str, dict[str, Any]]] = []

    async def get(self, path: str, **_: Any) -> dict[str, Any]:
        self.gets.append(path)
        if path not in self.objects:
            raise ApiError(404, "NotFound", f"{path} not found")
        return copy.deepcopy(self.objects[path])

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((path, body))
        return body


def events() -> tuple[list[tuple[str, str, str]], Any]:
    seen: list[tuple[str, str, str]] = []

    def post(_body: dict[str, Any], kind: str, reason: str, message: str) -> None:
        seen.append((kind, reason, message))

    return seen, post


def test_the_first_start_records_the_resolved_spec_and_the_template_version() -> None:
    api = FakeApi({TEMPLATE_PATH: template("hello", "41")})
    seen, post = events()
    body = asyncio.run(frozen_body(api, copy.deepcopy(WORKFLOW), post))  # type: ignore[arg-type]
    assert body is not None
    assert body["spec"]["nodes"][0]["command"] == ["echo", "hello", "${{ params.who }}"]
    assert body["spec"]["parameters"] == {"who": "team"}
    [(path, patch)] = api.patches
    assert path.endswith("/workflows/hello/status")
    assert patch["status"][RESOLVED_SPEC] == body["spec"]
    assert patch["status"]["templates"] == [
        {"kind": "WorkflowTemplate", "name": "greet", "resourceVersion": "41", "uid": "t-1"}
    ]
    assert seen == []


def test_a_restart_runs_the_recorded_spec_whatever_the_template_became() -> None:
    api = FakeApi({TEMPLATE_PATH: template("hello", "41")})
    _, post = events()
    first = asyncio.run(frozen_body(api, copy.deepcopy(WORKFLOW), post))  # type: ignore[arg-type]
    assert first is not None
    api.objects[TEMPLATE_PATH] = template("EDITED", "42")  # edited while the run goes on
    stored = {**copy.deepcopy(WORKFLOW), "status": api.patches[0][1]["status"]}
    stored["spec"]["stop"] = True  # the live spec's controls still count
    again = asyncio.run(frozen_body(api, stored, post))  # type: ignore[arg-type]
    assert again is not None
    assert again["spec"]["nodes"] == first["spec"]["nodes"]
    assert again["spec"]["stop"] is True
    assert len(api.gets) == 1  # nothing fetched the second time


def test_a_missing_template_fails_the_workflow_naming_it() -> None:
    api = FakeApi({})
    seen, post = events()
    assert asyncio.run(frozen_body(api, copy.deepcopy(WORKFLOW), post)) is None  # type: ignore[arg-type]
    [(_, patch)] = api.patches
    assert patch["status"]["phase"] == "Error"
    assert "WorkflowTemplate 'greet' not found" in patch["status"]["message"]
    assert seen[0][:2] == ("Warning", "TemplateUnresolved")
    assert "'greet'" in seen[0][2]


def test_a_workflow_without_references_is_left_as_it_is() -> None:
    plain = {**WORKFLOW, "spec": {"nodes": [{"name": "a", "image": "busybox"}]}}
    api = FakeApi({})
    _, post = events()
    assert asyncio.run(frozen_body(api, plain, post)) is plain  # type: ignore[arg-type]
    assert api.gets == []
    assert api.patches == []


def test_fetching_follows_nested_references_and_stops_at_missing_ones() -> None:
    outer = template("x", "1")
    outer["spec"]["nodes"] = [{"name": "n", "templateRef": {"name": "inner", "clusterScope": True}}]
    api = FakeApi({TEMPLATE_PATH: outer})
    spec = spec_of(WORKFLOW)
    assert spec is not None
    found = asyncio.run(fetch_templates(api, NS, spec))  # type: ignore[arg-type]
    assert set(found) == {(False, "greet")}
    assert api.gets == [TEMPLATE_PATH, "/apis/shoal.dev/v1alpha1/clusterworkflowtemplates/inner"]


def test_admission_refuses_a_reference_to_a_missing_template_by_name() -> None:
    refused = review("CREATE", WORKFLOW, templates={})
    assert not refused.allowed
    assert refused.problems == (
        "spec.workflowTemplateRef.name: WorkflowTemplate 'greet' not found",
    )
    spec = spec_of(template("hi", "1"))
    assert spec is not None
    there: dict[TemplateKey, Template] = {(False, "greet"): Template(False, "greet", spec)}
    assert review("CREATE", WORKFLOW, templates=there).allowed


def test_admission_lets_a_running_workflow_be_stopped_after_its_template_went() -> None:
    stopped = copy.deepcopy(WORKFLOW)
    stopped["spec"]["stop"] = True
    assert review("UPDATE", stopped, WORKFLOW, templates={}).allowed


def test_the_reviewer_reads_templates_for_the_objects_namespace() -> None:
    asked: list[str] = []

    async def read(namespace: str, _spec: Any) -> dict[TemplateKey, Template]:
        asked.append(namespace)
        return {}

    item = Review("u", "CREATE", "Workflow", NS, "hello", WORKFLOW, None)

    async def decide() -> Any:
        loop = asyncio.get_running_loop()
        return await Reviewer(templates=read).decide(item, loop.time() + 5)

    decision = asyncio.run(decide())
    assert asked == [NS]
    assert "WorkflowTemplate 'greet' not found" in decision.problems[0]


def test_retry_and_the_cli_read_a_template_runs_recorded_nodes() -> None:
    from shoal.cli.common import spec_nodes
    from shoal.core.retry import node_order

    nodes = [
        {"name": "z-first", "image": "x"},
        {"name": "a-next", "image": "x", "dependsOn": ["z-first"]},
    ]
    body = {
        **WORKFLOW,
        "status": {
            "phase": "Failed",
            RESOLVED_SPEC: {"nodes": nodes},
            "nodes": {"z-first": {"phase": "Failed"}, "a-next": {"phase": "Omitted"}},
        },
    }
    assert node_order(body) == ["z-first", "a-next"]  # the template's order, not sorted
    assert [n["name"] for n in spec_nodes(body)] == ["z-first", "a-next"]


def test_a_cron_workflow_may_stamp_its_runs_from_a_template() -> None:
    from shoal.manifests import compile_manifest, load_text

    text = """
apiVersion: shoal.dev/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  workflowSpec:
    workflowTemplateRef: {name: greet}
    parameters: {who: night}
"""
    [manifest] = load_text(text, "cron.yaml")
    spec = spec_of(template("hi", "1"))
    assert spec is not None
    wf = compile_manifest(manifest, None, {(False, "greet"): Template(False, "greet", spec)})
    assert wf.order == ("say",)
    assert wf.params["who"] == "night"
    assert "scheduledTime" in wf.params  # what each stamped run also gets
