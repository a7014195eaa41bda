"""Artifacts on the test control plane with a real MinIO (issue 6's acceptance scenarios).

The session operator's default store is a MinIO bucket (tests/cluster/conftest.py); worker
pods reach it with credentials from a Secret in their namespace. Tests named
`test_own_operator_*` run an operator of their own (a longer pending timeout for the big
fan-out; a throwaway MinIO that the test stops).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.kube.naming import LABEL_ITEM, LABEL_NODE, LABEL_WORKFLOW_UID
from tests.cluster.conftest import (
    ARTIFACT_BUCKET,
    ArtifactBucket,
    OperatorProcess,
    create_workflow,
    custom,
    load_manifest,
    start_operator,
    wait_until,
    wait_workflow,
    workflow_exists,
)
from tests.local.test_examples import _dataset_sha256

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "shoal.dev", "v1alpha1", "workflows"
MB = 1024 * 1024


def artifacts_workflow(
    name: str, megabytes: int, rows: int, sample_every: int, **artifacts: Any
) -> dict[str, Any]:
    """examples/artifacts.yaml with other sizes and `spec.artifacts` settings."""
    doc = load_manifest(REPO / "examples" / "artifacts.yaml")
    doc["metadata"] = {"name": name}
    doc["spec"]["parameters"] = {"megabytes": megabytes, "rows": rows, "sampleEvery": sample_every}
    doc["spec"]["artifacts"] = artifacts
    return doc


def run_prefix(body: dict[str, Any]) -> str:
    meta = body["metadata"]
    return f"{meta['namespace']}/{meta['name']}/{meta['uid']}/"


def delete_workflow(k8s_api: Any, namespace: str, name: str) -> None:
    custom(k8s_api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_until(
        lambda: not workflow_exists(k8s_api, namespace, name), 60, f"workflow {name} to be gone"
    )


def create_secret(k8s_api: Any, namespace: str, name: str, data: dict[str, str]) -> None:
    from kubernetes import client

    client.CoreV1Api(k8s_api).create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    )


def events_text(k8s_api: Any, namespace: str) -> str:
    from kubernetes import client

    events = client.CoreV1Api(k8s_api).list_namespaced_event(namespace).items
    return "\n".join(f"{e.reason}: {e.message}" for e in events)


@pytest.fixture
def own_operator(
    crds: None, kubeconfig: Path, namespace: str, artifact_store: ArtifactBucket, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """An operator for this test's namespace only; pending pods get 300 s (a busy node)."""
    op = start_operator(
        kubeconfig, namespace, tmp_path / "operator.log", artifact_store, pending_timeout=300
    )
    try:
        yield op
    finally:
        op.stop()
        print(f"operator log: {tmp_path / 'operator.log'}")


@pytest.mark.scale
@pytest.mark.timeout(2700)  # 10,000 pods on a 2-core machine: make test-scale only
def test_own_operator_a_200_mb_file_and_a_10k_list_pass_by_reference(
    k8s_api: Any, namespace: str, artifact_store: ArtifactBucket, own_operator: OperatorProcess
) -> None:
    big_run_by_reference(k8s_api, namespace, artifact_store, 200, 10_000, timeout=2400)


@pytest.mark.timeout(900)
def test_own_operator_a_20_mb_file_and_a_500_list_pass_by_reference(
    k8s_api: Any, namespace: str, artifact_store: ArtifactBucket, own_operator: OperatorProcess
) -> None:
    """The 10k test's behaviour at a size `make test` can afford (offloading from 256 B,
    so that 500 items' aggregated outputs travel by reference as 10,000 items' do)."""
    big_run_by_reference(
        k8s_api, namespace, artifact_store, 20, 500, timeout=600, offload_bytes=256
    )


def big_run_by_reference(
    k8s_api: Any,
    namespace: str,
    artifact_store: ArtifactBucket,
    megabytes: int,
    rows: int,
    timeout: float,
    offload_bytes: int | None = None,
) -> None:
    """A big file and a list far over 4 KiB pass by reference; the fan-out over the list
    aggregates into one artifact; the Workflow object stays small; GC on deletion."""
    sample_every = rows // 4
    settings: dict[str, Any] = {"gc": "OnDeletion"}
    if offload_bytes is not None:
        settings["offloadBytes"] = offload_bytes
    doc = artifacts_workflow("big", megabytes, rows, sample_every, **settings)
    doc["spec"]["parallelism"] = 10
    create_workflow(k8s_api, namespace, doc)
    body = wait_workflow(k8s_api, namespace, "big", timeout=timeout)

    status = body["status"]
    assert status["phase"] == "Succeeded", json.dumps(status)[:3000]
    nodes = status["nodes"]
    assert nodes["extract"]["outputs"]["dataset"]["$artifact"]["size"] == megabytes * MB
    ids = nodes["extract"]["outputs"]["ids"]["$artifact"]  # over 4 KiB: offloaded
    assert ids["format"] == "jsonl"
    assert ids["count"] == rows
    assert nodes["check"]["items"]["succeeded"] == rows
    assert nodes["check"]["outputs"]["score"]["$artifact"]["count"] == rows  # one artifact
    assert nodes["report"]["outputs"] == {
        "total": sum(i % 7 for i in range(rows)),
        "rows": rows,
        "datasetDigests": [_dataset_sha256(megabytes)],  # 4 items read the whole file back
    }
    size = len(json.dumps(body).encode())
    assert size < 16 * 1024, f"the Workflow object is {size} bytes"

    prefix = run_prefix(body)
    keys = artifact_store.keys(prefix)
    assert any(k.endswith("/extract/-/1/dataset.bin") for k in keys), keys
    assert any(k.endswith("/check/-/0/output.score") for k in keys), keys
    delete_workflow(k8s_api, namespace, "big")  # gc: OnDeletion, through a finalizer
    assert artifact_store.keys(prefix) == []
    # Leave an idle cluster: thousands of Jobs and pods being collected would starve the
    # tests that run next (their pods stayed Pending past the 15 s deadline).
    wait_until(lambda: not _left_over(k8s_api, namespace), 900, "the fan-out's Jobs and pods to go")


def _left_over(k8s_api: Any, namespace: str) -> bool:
    from kubernetes import client

    pods = client.CoreV1Api(k8s_api).list_namespaced_pod(namespace, limit=1).items
    jobs = client.BatchV1Api(k8s_api).list_namespaced_job(namespace, limit=1).items
    return bool(pods or jobs)


@pytest.mark.usefixtures("shoal_operator", "operator_log")
@pytest.mark.parametrize("gc", ["OnSuccess", "Keep"])
def test_gc_policy_on_success_deletes_at_once_and_keep_never(
    gc: str, k8s_api: Any, namespace: str, artifact_store: ArtifactBucket
) -> None:
    doc = artifacts_workflow("small", 1, 40, 20, gc=gc, offloadBytes=256)
    create_workflow(k8s_api, namespace, doc)
    body = wait_workflow(k8s_api, namespace, "small", timeout=300)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    prefix = run_prefix(body)

    if gc == "OnSuccess":
        wait_until(lambda: not artifact_store.keys(prefix), 60, "OnSuccess GC")
        return
    stored = artifact_store.keys(prefix)
    assert len(stored) >= 3, stored  # the file, the id list, an aggregate
    delete_workflow(k8s_api, namespace, "small")
    assert artifact_store.keys(prefix) == stored


@pytest.mark.usefixtures("shoal_operator", "operator_log")
def test_wrong_credentials_fail_the_node_clearly_and_never_show_the_secret(
    k8s_api: Any, namespace: str, artifact_store: ArtifactBucket
) -> None:
    secret = "not-the-right-secret-" + base64.b32encode(b"shoal-test").decode()
    create_secret(
        k8s_api, namespace, "bad-creds", {"accessKeyId": "nobody", "secretAccessKey": secret}
    )
    doc = artifacts_workflow("denied", 1, 10, 5, store={"credentialsSecret": "bad-creds"})
    create_workflow(k8s_api, namespace, doc)
    started = time.monotonic()
    body = wait_workflow(k8s_api, namespace, "denied", timeout=180)

    extract = body["status"]["nodes"]["extract"]
    assert extract["phase"] == "Failed"
    assert "credentials were rejected" in extract["message"], extract["message"]
    assert ARTIFACT_BUCKET in extract["message"]
    assert time.monotonic() - started < 120
    assert secret not in json.dumps(body)
    assert secret not in events_text(k8s_api, namespace)


@pytest.mark.usefixtures("crds")
def test_own_operator_a_stopped_store_fails_the_node_in_bounded_time(
    kubeconfig: Path, k8s_api: Any, namespace: str, fresh_minio: Any, tmp_path: Path
) -> None:
    fresh_minio.client().create_bucket(Bucket=ARTIFACT_BUCKET)
    create_secret(
        k8s_api,
        namespace,
        "fresh-creds",
        {"accessKeyId": fresh_minio.access_key, "secretAccessKey": fresh_minio.secret_key},
    )
    store = ArtifactBucket(fresh_minio)
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log", store)
    try:
        fresh_minio.stop()
        override = {"credentialsSecret": "fresh-creds"}
        doc = artifacts_workflow("unreachable", 1, 10, 5, store=override)
        create_workflow(k8s_api, namespace, doc)
        started = time.monotonic()
        body = wait_workflow(k8s_api, namespace, "unreachable", timeout=240)
    finally:
        op.stop()

    extract = body["status"]["nodes"]["extract"]
    assert extract["phase"] == "Failed", body["status"]
    assert "cannot reach S3 endpoint" in extract["message"], extract["message"]
    assert fresh_minio.endpoint in extract["message"]
    assert body["status"]["nodes"]["check"]["phase"] == "Omitted"
    assert time.monotonic() - started < 180  # bounded retries, no hang


def test_own_operator_killed_mid_fan_out_over_an_offloaded_list_reads_it_again(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    artifact_store: ArtifactBucket,
    tmp_path: Path,
) -> None:
    from kubernetes import client

    items = [f"item-{i:02d}-padded-to-be-long" for i in range(8)]
    marks = tmp_path / "marks"
    marks.touch()
    script = 'echo "$1" >> "$MARKS"; sleep 1; echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN {\\"type\\":\\"output\\",\\"key\\":\\"v\\",\\"value\\":\\"$1\\"}"'  # noqa: E501
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "survivor"},
        "spec": {
            "image": "ghcr.io/shoal-dev/worker:0.1.0",
            "artifacts": {"offloadBytes": 64},
            "nodes": [
                {"name": "src", "job": "shoal.echo", "args": {"ids": items}},
                {
                    "name": "fan",
                    "dependsOn": ["src"],
                    "forEach": "${{ nodes.src.outputs.ids }}",
                    "parallelism": 2,
                    "command": ["sh", "-c", script, "fan", "${{ item }}"],
                    "env": [{"name": "MARKS", "value": str(marks)}],
                },
            ],
        },
    }
    log = tmp_path / "operator.log"
    op = start_operator(kubeconfig, namespace, log, artifact_store, pending_timeout=120)
    core = client.CoreV1Api(k8s_api)

    def fan_running() -> bool:
        return any(
            (p.metadata.labels or {}).get("shoal.dev/node") == "fan"
            and any(s.state.running for s in p.status.container_statuses or [])
            for p in core.list_namespaced_pod(namespace).items
        )

    try:
        create_workflow(k8s_api, namespace, doc)
        wait_until(fan_running, 120, "a fan-out pod to run")
        op.kill()  # the items exist only in the offloaded list and in the running Jobs
        op = start_operator(kubeconfig, namespace, log, artifact_store, pending_timeout=120)
        body = wait_workflow(k8s_api, namespace, "survivor", timeout=180)
    finally:
        op.stop()

    status = body["status"]
    assert status["phase"] == "Succeeded", (status, log.read_text()[-4000:])
    assert status["nodes"]["src"]["outputs"]["ids"]["$artifact"]["count"] == len(items)
    assert sorted(marks.read_text().split()) == sorted(items)  # each item ran once
    assert status["nodes"]["fan"]["outputs"]["v"]["$artifact"]["count"] == len(items)


RETRIED_ITEM = (
    'echo "$1" >> "$MARKS"; case "$1" in 1|3) test -f "$FIXED" || exit 3; '
    'while [ ! -f "$GO" ]; do sleep 0.05; done;; esac; '
    'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN {\\"type\\":\\"output\\",\\"key\\":\\"v\\",'
    '\\"value\\":\\"value-$1-padded-for-the-store\\"}"'
)
"""Notes its item in $MARKS (one line per pod), fails items 1 and 3 until $FIXED exists
and then holds them until $GO exists; outputs a long `v` (the aggregate is offloaded)."""
SEEN_ITEM = 'echo "$1=$2" >> "$SEEN"'


def test_own_operator_retry_of_an_offloaded_fan_out_reruns_failed_items_across_a_restart(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    artifact_store: ArtifactBucket,
    tmp_path: Path,
) -> None:
    from kubernetes import client

    marks, fixed, go, seen = (tmp_path / n for n in ("marks", "fixed", "go", "seen"))
    env = {"MARKS": marks, "FIXED": fixed, "GO": go, "SEEN": seen}
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "kept"},
        "spec": {
            "image": "ghcr.io/shoal-dev/worker:0.1.0",
            "artifacts": {"offloadBytes": 64},
            "nodes": [
                {
                    "name": "fan",
                    "forEach": [0, 1, 2, 3, 4],
                    "failFast": False,
                    "command": ["sh", "-c", RETRIED_ITEM, "fan", "${{ item }}"],
                    "env": [{"name": k, "value": str(v)} for k, v in env.items()],
                },
                {
                    "name": "check",
                    "dependsOn": ["fan"],
                    "forEach": "${{ nodes.fan.outputs.v }}",
                    "command": ["sh", "-c", SEEN_ITEM, "check", "${{ itemIndex }}", "${{ item }}"],
                    "env": [{"name": "SEEN", "value": str(seen)}],
                },
            ],
        },
    }
    log = tmp_path / "operator.log"
    keep = ["--keep-succeeded-jobs"]
    op = start_operator(kubeconfig, namespace, log, artifact_store, extra_args=keep)
    batch, core = client.BatchV1Api(k8s_api), client.CoreV1Api(k8s_api)
    try:
        uid = create_workflow(k8s_api, namespace, doc)["metadata"]["uid"]
        failed = wait_workflow(k8s_api, namespace, "kept", timeout=120)["status"]
        assert failed["phase"] == "Failed", failed
        assert failed["nodes"]["fan"]["succeededItems"] == "0,2,4"
        assert failed["nodes"]["fan"]["outputs"]["v"]["$artifact"]["count"] == 5

        fixed.touch()
        marks.write_text("")
        cli = [sys.executable, "-m", "shoal.cli.main", "retry", "kept", "-n", namespace]
        retried = subprocess.run(
            [*cli, "--kubeconfig", str(kubeconfig)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            check=False,
        )
        assert retried.returncode == 0, retried.stderr
        assert "fan: keeps the outputs of items 0,2,4" in retried.stdout
        selector = f"{LABEL_WORKFLOW_UID}={uid},{LABEL_NODE}=fan"

        def both_running() -> bool:
            pods = core.list_namespaced_pod(namespace, label_selector=selector).items
            running = [
                p for p in pods if any(s.state.running for s in p.status.container_statuses or [])
            ]
            return len(running) == 2

        wait_until(both_running, 120, "the two retried items to run")
        op.kill()  # the kept items now live only in the status and the offloaded list
        op = start_operator(kubeconfig, namespace, log, artifact_store, extra_args=keep)
        go.touch()
        body = wait_workflow(k8s_api, namespace, "kept", timeout=180)
        jobs = batch.list_namespaced_job(namespace, label_selector=selector).items
    finally:
        op.stop()

    status = body["status"]
    assert status["phase"] == "Succeeded", (status, log.read_text()[-4000:])
    assert sorted(marks.read_text().split()) == ["1", "3"]  # no kept item ran again
    assert sorted(j.metadata.labels[LABEL_ITEM] for j in jobs) == ["1", "3"]  # two new Jobs
    assert status["nodes"]["fan"]["succeededItems"] == "0-4"
    assert sorted(seen.read_text().split()) == [
        f"{i}=value-{i}-padded-for-the-store" for i in range(5)
    ]
