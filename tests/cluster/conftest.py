"""Cluster-tier fixtures for the operator: CRDs installed, `shoal operator` running.

One operator runs for the whole session and watches every test namespace except those
whose test drives an operator of its own (named `test_own_operator_*`: restart tests
kill and restart theirs, and two operators must never share a workflow).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.plugin import Kubectl

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "shoal.dev", "v1alpha1", "workflows"
FINISHED = {"Succeeded", "Failed", "Error", "Stopped"}
SESSION_OPERATOR_NAMESPACES = "t-*,!t-test-own-operator*"
PENDING_TIMEOUT = 15


@dataclass
class OperatorProcess:
    """A `shoal operator` child process and its log file."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-20000:]

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when a node dies under the operator."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run `scale` tests last: the control plane is still collecting their thousands of
    objects (Jobs, pods, Events) for minutes after them, which made later tests' pods
    miss their deadlines."""
    items.sort(key=lambda item: item.get_closest_marker("scale") is not None)


ARTIFACT_BUCKET = "shoal-artifacts"
ARTIFACT_PREFIX = "runs"
CREDENTIALS_SECRET = "shoal-artifacts"
"""The Secret (in each test namespace) worker pods read their S3 credentials from."""


@dataclass
class ArtifactBucket:
    """The MinIO bucket the operators under test use as their default artifact store."""

    minio: Any
    bucket: str = ARTIFACT_BUCKET

    def operator_env(self) -> dict[str, str]:
        return {
            "SHOAL_ARTIFACTS": f"s3://{self.bucket}/{ARTIFACT_PREFIX}",
            "SHOAL_S3_ENDPOINT": self.minio.endpoint,
            "SHOAL_S3_REGION": self.minio.region,
            "AWS_ACCESS_KEY_ID": self.minio.access_key,
            "AWS_SECRET_ACCESS_KEY": self.minio.secret_key,
            "SHOAL_ARTIFACTS_CREDENTIALS_SECRET": CREDENTIALS_SECRET,
        }

    def create_credentials_secret(self, core: Any, namespace: str) -> None:
        """The Secret worker pods in `namespace` read their S3 credentials from."""
        from kubernetes import client

        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=CREDENTIALS_SECRET),
                string_data={
                    "accessKeyId": self.minio.access_key,
                    "secretAccessKey": self.minio.secret_key,
                },
            ),
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under `runs/<prefix>` (the store adds `runs/`)."""
        client = self.minio.client()
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{ARTIFACT_PREFIX}/{prefix}"
        ):
            keys.extend(item["Key"] for item in page.get("Contents") or [])
        return keys


@pytest.fixture(scope="session")
def artifact_store(minio: Any) -> ArtifactBucket:
    """A bucket in the session's MinIO for the operators' default store."""
    client = minio.client()
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=ARTIFACT_BUCKET)
    return ArtifactBucket(minio)


@pytest.fixture
def namespace(namespace: str, request: pytest.FixtureRequest, k8s_api: Any) -> str:
    """The plugin's fresh namespace, plus the artifact credentials Secret when an operator
    of the session (or the test's own, with `artifact_store`) will run pods in it."""
    if {"shoal_operator", "artifact_store"} & set(request.fixturenames):
        from kubernetes import client

        store: ArtifactBucket = request.getfixturevalue("artifact_store")
        store.create_credentials_secret(client.CoreV1Api(k8s_api), namespace)
    return namespace


def start_operator(
    kubeconfig: Path,
    namespaces: str,
    log: Path,
    store: ArtifactBucket | None = None,
    pending_timeout: float = PENDING_TIMEOUT,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> OperatorProcess:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    if store is not None:
        env.update(store.operator_env())
    env.update(extra_env or {})
    argv = [
        sys.executable,
        "-m",
        "shoal.cli.main",
        "operator",
        "--namespace",
        namespaces,
        "--metrics-port",
        "0",
        "--pending-timeout",
        str(pending_timeout),
        "--no-restricted",
        "--log-level",
        "INFO",
        *extra_args,
    ]
    handle = log.open("ab")
    proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    handle.close()
    return OperatorProcess(proc, log)


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl, k8s_api: Any) -> None:
    """The Shoal CRDs, applied and Established."""
    from kubernetes import client

    kubectl("apply", "-f", str(REPO / "crds"))
    extensions = client.ApiextensionsV1Api(k8s_api)

    def established(name: str) -> bool:
        # Not `kubectl wait`: it errors out, instead of waiting, while a new CRD has no
        # status.conditions yet.
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    for name in ("workflows.shoal.dev", "cronworkflows.shoal.dev"):
        wait_until(lambda name=name: established(name), 60, f"CRD {name} to be Established")


@pytest.fixture(scope="session")
def shoal_operator(
    crds: None, kubeconfig: Path, artifact_store: ArtifactBucket
) -> Iterator[OperatorProcess]:
    """The session's operator, watching the test namespaces, with MinIO as its store."""
    log = Path(tempfile.mkstemp(prefix="shoal-operator-", suffix=".log")[1])
    op = start_operator(kubeconfig, SESSION_OPERATOR_NAMESPACES, log, artifact_store)
    try:
        yield op
    finally:
        op.stop()
        print(f"\noperator log: {log}")


@pytest.fixture
def operator_log(shoal_operator: OperatorProcess) -> Iterator[None]:
    """Attach the operator's log tail to a failing test's output."""
    yield
    if shoal_operator.proc.poll() is not None:
        pytest.fail(f"the operator exited:\n{shoal_operator.output()}")


# -- helpers -----------------------------------------------------------------------------


def custom(k8s_api: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(k8s_api)


def create_workflow(k8s_api: Any, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = custom(k8s_api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, doc
    )
    return body


def load_manifest(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def get_workflow(k8s_api: Any, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = custom(k8s_api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return body


def workflow_exists(k8s_api: Any, namespace: str, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        get_workflow(k8s_api, namespace, name)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def wait_workflow(
    k8s_api: Any,
    namespace: str,
    name: str,
    *,
    phases: set[str] | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    """Watch one Workflow until its phase is in `phases` (default: any finished phase)."""
    from kubernetes import watch

    wanted = phases or FINISHED
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        remaining = max(1, int(deadline - time.monotonic()))
        stream = watch.Watch().stream(
            custom(k8s_api).list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            timeout_seconds=remaining,
        )
        for event in stream:
            last = event["object"]
            if (last.get("status") or {}).get("phase") in wanted:
                return last
    status = json.dumps(last.get("status"), indent=1)[:3000]
    raise AssertionError(f"workflow {namespace}/{name} not in {wanted} after {timeout}s: {status}")


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    """Poll a cluster condition with a deadline (for conditions no single watch covers)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def as_run_result(body: dict[str, Any]) -> Any:
    """The Workflow's status in the shape `shoal run -o json` gives, so one set of
    expectations checks both executors."""
    from tests.local.conftest import RunResult

    status = body.get("status") or {}
    nodes = {}
    for name, node in (status.get("nodes") or {}).items():
        entry = dict(node)
        if "items" in entry:
            items = entry["items"]
            entry["items"] = {k: items[k] for k in ("total", "succeeded", "failed")}
        nodes[name] = entry
    doc = {**status, "nodes": nodes}
    return RunResult(0 if status.get("phase") == "Succeeded" else 1, doc, "")
