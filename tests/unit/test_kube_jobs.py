"""The batch/v1 Job for one attempt (shoal.kube.jobs.build_job).

Every Job here is built from what the real pipeline produces: a spec compiled by
`compile_workflow` and a `StartTask` decided by the planner's `advance`, never a
hand-made task.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest

from shoal.api.workflow import WorkflowSpec
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta
from shoal.core.decisions import StartTask
from shoal.core.planner import advance
from shoal.core.state import RunState, TaskFinished, record_finished
from shoal.core.validation import compile_workflow
from shoal.kube.jobs import (
    ARGS_FILE,
    MAX_ARGS_BYTES,
    MAX_ITEM_ENV_BYTES,
    ArgsTooLarge,
    JobDefaults,
    build_job,
    job_token,
)
from shoal.kube.naming import ANNOTATION_ARGS, job_name, task_labels

UID = "3d5b8e0c-1a2f-4c6d-9e7f-0a1b2c3d4e5f"
META = WorkflowMeta(name="catalog-integration", namespace="data-pipelines", uid=UID)
T0 = 1_790_000_000.0
DEFAULTS = JobDefaults()
TOKEN = "d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


# --- building blocks -----------------------------------------------------------------------


def compile_spec(spec: dict[str, Any], params: dict[str, Any] | None = None) -> CompiledWorkflow:
    return compile_workflow(WorkflowSpec.model_validate(spec), META, params)


def planned_starts(
    wf: CompiledWorkflow,
    node: str,
    outputs: dict[str, dict[str, Any]] | None = None,
    *,
    fail_attempts: int = 0,
) -> list[StartTask]:
    """The planner's StartTasks for `node`: upstream nodes succeed with `outputs`; the
    node's first `fail_attempts` attempts fail (retriably), so later attempts are returned."""
    outputs = outputs or {}
    state = RunState.new(list(wf.order))
    now = T0
    failed = 0
    for _ in range(50):
        plan = advance(wf, state, now)
        started = [d for d in plan.decisions if isinstance(d, StartTask)]
        mine = [d for d in started if d.node == node]
        if mine and failed >= fail_attempts:
            return mine
        if not started:  # waiting for a retry
            assert plan.wake_at is not None, plan
            now = plan.wake_at
            continue
        for decision in started:
            now += 1
            fail = decision.node == node
            event = TaskFinished(
                decision.node,
                decision.index,
                decision.attempt,
                succeeded=not fail,
                at=now,
                exit_code=1 if fail else 0,
                outputs={} if fail else outputs.get(decision.node, {}),
                message="boom" if fail else "",
            )
            assert record_finished(state, event)
            failed += fail
    raise AssertionError(f"the planner never started {node!r}")


def only_start(wf: CompiledWorkflow, node: str, **kwargs: Any) -> StartTask:
    [start] = planned_starts(wf, node, **kwargs)
    return start


def job_for(spec: dict[str, Any], node: str = "a", defaults: JobDefaults = DEFAULTS) -> Any:
    wf = compile_spec(spec)
    return build_job(wf, only_start(wf, node), defaults, token=TOKEN)


def container(job: dict[str, Any]) -> dict[str, Any]:
    [main] = job["spec"]["template"]["spec"]["containers"]
    assert main["name"] == "main"
    return dict(main)


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    return dict(job["spec"]["template"]["spec"])


def env_of(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = container(job)["env"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    return {e["name"]: e for e in entries}


def env_values(job: dict[str, Any]) -> dict[str, str]:
    return {name: e["value"] for name, e in env_of(job).items() if "value" in e}


MARKETS = {
    "image": "registry.example.com/acme/jobs:1.4.2",
    "parameters": {"region": "eu-west"},
    "nodes": [{"name": "a", "job": "market-finder", "args": {"region": "${{ params.region }}"}}],
}


# --- the Job's shape ----------------------------------------------------------------------


def test_a_job_node_runs_once_as_one_pod_owned_by_its_workflow() -> None:
    wf = compile_spec(MARKETS)
    start = only_start(wf, "a")
    job = build_job(wf, start, DEFAULTS, token=TOKEN)

    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    meta = job["metadata"]
    assert meta["name"] == job_name(META.name, UID, "a", 0, 1)
    assert meta["namespace"] == "data-pipelines"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "shoal.dev/v1alpha1",
            "kind": "Workflow",
            "name": "catalog-integration",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    spec = job["spec"]
    # Retries are Shoal's decision: the Job controller must never re-run a pod.
    assert spec["backoffLimit"] == 0
    assert spec["completions"] == 1
    assert spec["parallelism"] == 1
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert "activeDeadlineSeconds" not in spec  # no timeout, no backstop


def test_labels_on_the_job_and_its_pod_route_events_back_to_the_attempt() -> None:
    job = job_for(MARKETS)
    expected = task_labels(META.name, UID, "a", 0, 1)
    assert job["metadata"]["labels"] == expected
    assert job["spec"]["template"]["metadata"]["labels"] == expected
    assert all(_LABEL_VALUE.match(v) and len(v) <= 63 for v in expected.values())
    assert _DNS_LABEL.match(job["metadata"]["name"])


def test_args_travel_in_an_annotation_mounted_as_a_file() -> None:
    wf = compile_spec(MARKETS)
    start = only_start(wf, "a")
    job = build_job(wf, start, DEFAULTS, token=TOKEN)

    annotations = job["spec"]["template"]["metadata"]["annotations"]
    assert json.loads(annotations[ANNOTATION_ARGS]) == {"region": "eu-west"} == start.args

    main = container(job)
    assert main["command"] == ["shoal-worker"]
    assert main["args"] == ["run", "--job", "market-finder", "--args-file", ARGS_FILE]
    assert ARGS_FILE == "/etc/shoal/args.json"
    [mount] = main["volumeMounts"]
    assert mount == {"name": "shoal-args", "mountPath": "/etc/shoal", "readOnly": True}
    [volume] = pod_spec(job)["volumes"]
    assert volume["name"] == "shoal-args"
    [item] = volume["downwardAPI"]["items"]
    assert item["path"] == "args.json"  # mountPath + path == ARGS_FILE
    assert item["fieldRef"] == {"fieldPath": f"metadata.annotations['{ANNOTATION_ARGS}']"}


def test_args_never_appear_in_env_or_on_the_command_line() -> None:
    needle = "needle-7f3a9c"
    spec = {
        "image": "worker:1",
        "nodes": [
            {"name": "a", "job": "load", "args": {"token": needle, "nested": {"x": [needle]}}}
        ],
    }
    job = job_for(spec)
    main = container(job)
    assert needle not in json.dumps(main["env"])
    assert needle not in json.dumps(main["command"] + main["args"])
    assert needle in job["spec"]["template"]["metadata"]["annotations"][ANNOTATION_ARGS]


def test_the_result_also_reaches_the_operator_through_the_termination_message() -> None:
    assert container(job_for(MARKETS))["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_a_job_without_args_gets_an_empty_object() -> None:
    job = job_for({"image": "w:1", "nodes": [{"name": "a", "job": "noop"}]})
    assert json.loads(job["spec"]["template"]["metadata"]["annotations"][ANNOTATION_ARGS]) == {}


def test_a_command_node_runs_its_command_and_args_and_carries_no_args_file() -> None:
    spec = {
        "parameters": {"who": "world"},
        "nodes": [
            {
                "name": "a",
                "image": "curlimages/curl:8.10.1",
                "command": ["sh", "-c", "echo hello ${{ params.who }}"],
                "args": ["--n", "3"],
            }
        ],
    }
    job = job_for(spec)
    main = container(job)
    assert main["image"] == "curlimages/curl:8.10.1"
    assert main["command"] == ["sh", "-c", "echo hello world"]
    assert main["args"] == ["--n", "3"]
    assert "volumeMounts" not in main
    assert "volumes" not in pod_spec(job)
    assert ANNOTATION_ARGS not in job["spec"]["template"]["metadata"]["annotations"]


def test_the_manifest_is_plain_json() -> None:
    job = job_for(MARKETS)
    assert json.loads(json.dumps(job)) == job


# --- security -----------------------------------------------------------------------------


def test_pods_meet_the_restricted_profile_by_default() -> None:
    job = job_for(MARKETS)
    pod = pod_spec(job)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["runAsUser"] == 65532
    main = container(job)["securityContext"]
    assert main["allowPrivilegeEscalation"] is False
    assert main["capabilities"] == {"drop": ["ALL"]}
    assert main["runAsNonRoot"] is True
    assert "privileged" not in main
    assert not any(pod_spec(job).get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))


def test_no_security_context_when_restricted_is_off() -> None:
    job = job_for(MARKETS, defaults=JobDefaults(restricted=False))
    assert "securityContext" not in pod_spec(job)
    assert "securityContext" not in container(job)


def test_restricted_without_a_fixed_user_leaves_the_uid_to_the_image() -> None:
    job = job_for(MARKETS, defaults=JobDefaults(run_as_user=None))
    pod = pod_spec(job)["securityContext"]
    assert "runAsUser" not in pod
    assert pod["runAsNonRoot"] is True


# --- image, resources, scheduling -----------------------------------------------------------


@pytest.mark.parametrize(
    ("node_image", "defaults_image", "workflow_image", "expected"),
    [
        ("node:1", "defaults:1", "workflow:1", "node:1"),
        (None, "defaults:1", "workflow:1", "defaults:1"),
        (None, None, "workflow:1", "workflow:1"),
        (None, None, None, "operator-default:1"),
    ],
)
def test_image_precedence_node_then_defaults_then_workflow_then_operator(
    node_image: str | None, defaults_image: str | None, workflow_image: str | None, expected: str
) -> None:
    node: dict[str, Any] = {"name": "a", "job": "j"}
    spec: dict[str, Any] = {"nodes": [node]}
    if node_image:
        node["image"] = node_image
    if defaults_image:
        spec["defaults"] = {"image": defaults_image}
    if workflow_image:
        spec["image"] = workflow_image
    job = job_for(spec, defaults=JobDefaults(image="operator-default:1"))
    assert container(job)["image"] == expected


SCHEDULING_DEFAULTS = {
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    "nodeSelector": {"pool": "batch"},
    "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
    "serviceAccountName": "etl-runner",
}


def test_resources_and_scheduling_come_from_the_workflow_defaults() -> None:
    spec = {"image": "w:1", "defaults": SCHEDULING_DEFAULTS, "nodes": [{"name": "a", "job": "j"}]}
    job = job_for(spec)
    resources = container(job)["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert not resources.get("limits")
    pod = pod_spec(job)
    assert pod["nodeSelector"] == {"pool": "batch"}
    assert pod["tolerations"] == [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["serviceAccountName"] == "etl-runner"


def test_a_nodes_own_resources_and_scheduling_win_over_the_defaults() -> None:
    own = {
        "resources": {"requests": {"cpu": "2"}, "limits": {"memory": "4Gi"}},
        "nodeSelector": {"pool": "gpu"},
        "tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes"}],
        "serviceAccountName": "trainer",
    }
    spec = {
        "image": "w:1",
        "defaults": SCHEDULING_DEFAULTS,
        "nodes": [{"name": "a", "job": "j", **own}],
    }
    job = job_for(spec)
    resources = container(job)["resources"]
    assert resources["requests"] == {"cpu": "2"}
    assert resources["limits"] == {"memory": "4Gi"}
    pod = pod_spec(job)
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Equal", "value": "yes"}]
    assert pod["serviceAccountName"] == "trainer"


def test_nothing_is_set_that_the_workflow_does_not_ask_for() -> None:
    job = job_for({"image": "w:1", "nodes": [{"name": "a", "job": "j"}]})
    assert "resources" not in container(job)
    pod = pod_spec(job)
    for key in ("nodeSelector", "tolerations", "serviceAccountName"):
        assert key not in pod


# --- environment ----------------------------------------------------------------------------


def test_env_names_the_run_and_passes_literal_values_rendered() -> None:
    spec = {
        "image": "w:1",
        "parameters": {"region": "eu-west"},
        "defaults": {"env": [{"name": "LOG_LEVEL", "value": "info"}]},
        "nodes": [
            {
                "name": "a",
                "job": "j",
                "env": [
                    {"name": "REGION", "value": "${{ params.region }}"},
                    {"name": "LOG_LEVEL", "value": "debug"},
                ],
            }
        ],
    }
    values = env_values(job_for(spec))
    assert values["SHOAL_WORKFLOW"] == "catalog-integration"
    assert values["SHOAL_NAMESPACE"] == "data-pipelines"
    assert values["SHOAL_NODE"] == "a"
    assert values["SHOAL_ATTEMPT"] == "1"
    assert values["REGION"] == "eu-west"
    assert values["LOG_LEVEL"] == "debug"  # the node's own value wins over the default
    assert "SHOAL_ITEM_INDEX" not in values
    assert "SHOAL_ITEM" not in values


def test_the_attempt_token_is_in_env_last_and_cannot_be_set_by_the_workflow() -> None:
    spec = {
        "image": "w:1",
        "nodes": [
            {
                "name": "a",
                "job": "j",
                "env": [{"name": "SHOAL_PROTOCOL_TOKEN", "value": "chosen-by-the-author"}],
            }
        ],
    }
    job = job_for(spec)
    names = [var["name"] for var in job["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert names.count("SHOAL_PROTOCOL_TOKEN") == 1
    assert env_values(job)["SHOAL_PROTOCOL_TOKEN"] == TOKEN
    assert job_token(job) == TOKEN  # what the operator reads back after a restart
    assert job_token({}) == ""


def test_secret_references_pass_through_as_references() -> None:
    secret_ref = {"secretKeyRef": {"name": "warehouse-credentials", "key": "password"}}
    config_ref = {"configMapKeyRef": {"name": "settings", "key": "endpoint", "optional": True}}
    field_ref = {"fieldRef": {"fieldPath": "spec.nodeName"}}
    spec = {
        "image": "w:1",
        "defaults": {"env": [{"name": "ENDPOINT", "valueFrom": config_ref}]},
        "nodes": [
            {
                "name": "a",
                "job": "j",
                "env": [
                    {"name": "DB_PASSWORD", "valueFrom": secret_ref},
                    {"name": "NODE_NAME", "valueFrom": field_ref},
                ],
            }
        ],
    }
    job = job_for(spec)
    env = env_of(job)
    assert env["DB_PASSWORD"] == {"name": "DB_PASSWORD", "valueFrom": secret_ref}
    assert env["ENDPOINT"] == {"name": "ENDPOINT", "valueFrom": config_ref}
    assert env["NODE_NAME"] == {"name": "NODE_NAME", "valueFrom": field_ref}
    # Only the reference is in the manifest: no value, and no secretKeyRef anywhere else.
    assert "value" not in env["DB_PASSWORD"]
    assert json.dumps(job).count("secretKeyRef") == 1


def fan_out_spec(items: list[Any]) -> dict[str, Any]:
    return {
        "image": "w:1",
        "nodes": [{"name": "each", "job": "integrate", "forEach": items, "itemArg": "market"}],
    }


def test_fan_out_items_get_their_index_and_item_in_env_and_args() -> None:
    items: list[Any] = ["de", {"id": 7, "tags": ["x"]}, 3]
    wf = compile_spec(fan_out_spec(items))
    starts = planned_starts(wf, "each")
    assert [s.index for s in starts] == [0, 1, 2]
    jobs = [build_job(wf, s, DEFAULTS, token=TOKEN) for s in starts]
    assert len({j["metadata"]["name"] for j in jobs}) == 3
    for index, (item, job) in enumerate(zip(items, jobs, strict=True)):
        values = env_values(job)
        assert values["SHOAL_ITEM_INDEX"] == str(index)
        assert json.loads(values["SHOAL_ITEM"]) == item
        annotation = job["spec"]["template"]["metadata"]["annotations"][ANNOTATION_ARGS]
        assert json.loads(annotation) == {"market": item}
        assert job["metadata"]["labels"]["shoal.dev/item"] == str(index)


def test_fan_out_over_an_upstream_output() -> None:
    spec = {
        "image": "w:1",
        "nodes": [
            {"name": "markets", "job": "market-finder"},
            {
                "name": "each",
                "job": "integrate",
                "dependsOn": ["markets"],
                "forEach": "${{ nodes.markets.outputs.ids }}",
                "itemArg": "market",
            },
        ],
    }
    wf = compile_spec(spec)
    starts = planned_starts(wf, "each", {"markets": {"ids": ["m1", "m2"]}})
    jobs = [build_job(wf, s, DEFAULTS, token=TOKEN) for s in starts]
    assert [json.loads(env_values(j)["SHOAL_ITEM"]) for j in jobs] == ["m1", "m2"]


def item_of_json_size(size: int) -> str:
    item = "x" * (size - 2)  # the JSON string adds two quotes
    assert len(json.dumps(item).encode()) == size
    return item


def test_an_item_over_8_kib_is_left_out_of_env_but_stays_in_args() -> None:
    fits = item_of_json_size(MAX_ITEM_ENV_BYTES)
    too_big = item_of_json_size(MAX_ITEM_ENV_BYTES + 1)
    wf = compile_spec(fan_out_spec([fits, too_big]))
    first, second = (build_job(wf, s, DEFAULTS, token=TOKEN) for s in planned_starts(wf, "each"))
    assert json.loads(env_values(first)["SHOAL_ITEM"]) == fits
    assert "SHOAL_ITEM" not in env_values(second)
    assert env_values(second)["SHOAL_ITEM_INDEX"] == "1"
    annotation = second["spec"]["template"]["metadata"]["annotations"][ANNOTATION_ARGS]
    assert json.loads(annotation) == {"market": too_big}


def test_a_retry_is_a_new_job_with_its_attempt_number() -> None:
    spec = {
        "image": "w:1",
        "nodes": [{"name": "a", "job": "flaky", "retries": {"limit": 2, "backoffSeconds": 5}}],
    }
    wf = compile_spec(spec)
    first = build_job(wf, only_start(wf, "a"), DEFAULTS, token=TOKEN)
    retry = only_start(wf, "a", fail_attempts=1)
    assert retry.attempt == 2
    second = build_job(wf, retry, DEFAULTS, token=TOKEN)
    assert second["metadata"]["name"] == job_name(META.name, UID, "a", 0, 2)
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert env_values(second)["SHOAL_ATTEMPT"] == "2"
    assert second["metadata"]["labels"]["shoal.dev/attempt"] == "2"


# --- deadlines and limits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "timeout"),
    [("node", 90.5), ("defaults", 600), ("node", 1)],
)
def test_a_timeout_gets_a_job_deadline_as_a_backstop(where: str, timeout: float) -> None:
    node: dict[str, Any] = {"name": "a", "job": "j"}
    spec: dict[str, Any] = {"image": "w:1", "nodes": [node]}
    if where == "node":
        node["timeoutSeconds"] = timeout
    else:
        spec["defaults"] = {"timeoutSeconds": timeout}
    job = job_for(spec)
    expected = math.ceil(timeout) + DEFAULTS.deadline_backstop_seconds
    assert job["spec"]["activeDeadlineSeconds"] == expected
    # Kubernetes only ends the attempt after the operator would have.
    assert job["spec"]["activeDeadlineSeconds"] > timeout


def test_the_backstop_margin_is_configurable() -> None:
    spec = {"image": "w:1", "nodes": [{"name": "a", "job": "j", "timeoutSeconds": 30}]}
    job = job_for(spec, defaults=JobDefaults(deadline_backstop_seconds=5))
    assert job["spec"]["activeDeadlineSeconds"] == 35


def args_of_json_size(size: int) -> dict[str, str]:
    overhead = len(json.dumps({"blob": ""}, separators=(",", ":")))
    args = {"blob": "x" * (size - overhead)}
    assert len(json.dumps(args, separators=(",", ":")).encode()) == size
    return args


def test_args_up_to_200_kib_fit() -> None:
    spec = {
        "image": "w:1",
        "nodes": [{"name": "a", "job": "j", "args": args_of_json_size(MAX_ARGS_BYTES)}],
    }
    job = job_for(spec)
    annotation = job["spec"]["template"]["metadata"]["annotations"][ANNOTATION_ARGS]
    assert len(annotation.encode()) == MAX_ARGS_BYTES


def test_args_over_200_kib_raise_args_too_large_naming_the_size() -> None:
    spec = {
        "image": "w:1",
        "nodes": [{"name": "a", "job": "j", "args": args_of_json_size(300 * 1024)}],
    }
    with pytest.raises(ArgsTooLarge) as raised:
        job_for(spec)
    message = str(raised.value)
    assert "300 KiB" in message
    assert "200 KiB" in message
    assert "artifact" in message


def test_args_just_over_the_limit_are_refused() -> None:
    spec = {
        "image": "w:1",
        "nodes": [{"name": "a", "job": "j", "args": args_of_json_size(MAX_ARGS_BYTES + 1)}],
    }
    with pytest.raises(ArgsTooLarge):
        job_for(spec)


def test_args_from_parameters_are_measured_after_rendering() -> None:
    spec = {
        "image": "w:1",
        "parameters": {"blob": ""},
        "nodes": [{"name": "a", "job": "j", "args": {"blob": "${{ params.blob }}"}}],
    }
    wf = compile_spec(spec, {"blob": "x" * (220 * 1024)})
    with pytest.raises(ArgsTooLarge, match=r"args are 220 KiB"):
        build_job(wf, only_start(wf, "a"), DEFAULTS, token=TOKEN)


def test_non_latin_text_is_measured_as_utf_8_not_as_escapes() -> None:
    """150 KiB of UTF-8 fits; as \\u escapes it would be 450 KiB and be refused."""
    text = "東京" * (25 * 1024)  # 3 bytes per character in UTF-8
    spec = {"image": "w:1", "nodes": [{"name": "a", "job": "j", "args": {"text": text}}]}
    job = job_for(spec)
    annotation = job["spec"]["template"]["metadata"]["annotations"][ANNOTATION_ARGS]
    assert json.loads(annotation) == {"text": text}
    assert len(annotation.encode()) < MAX_ARGS_BYTES


def test_a_lone_surrogate_in_args_still_makes_valid_utf_8() -> None:
    spec = {"image": "w:1", "nodes": [{"name": "a", "job": "j", "args": {"odd": "a\ud800b"}}]}
    job = job_for(spec)
    annotation = job["spec"]["template"]["metadata"]["annotations"][ANNOTATION_ARGS]
    annotation.encode()  # the API server only takes UTF-8
    assert json.loads(annotation) == {"odd": "a\ud800b"}
