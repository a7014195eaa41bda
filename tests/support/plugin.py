"""pytest plugin: session fixtures for the cluster tier and anything that needs real services.

Load it with ``pytest_plugins = ["support.plugin"]`` (tests/conftest.py does). Nothing
starts at import or collection; each service starts the first time a test asks for it
and stops at the end of the session:

``test_cluster``  the control plane + node agent (or the cluster named by ``KUBECONFIG``)
``kubeconfig``    path of an admin kubeconfig for it
``k8s_api``       a ``kubernetes.client.ApiClient`` for it
``namespace``     a fresh namespace per test (default ServiceAccount ready), deleted after
``kubectl``       run kubectl against it
``minio``         a MinIO server (``.client()`` gives boto3)
``fresh_minio``   a MinIO server of the test's own, for fault tests that stop or freeze it
``postgres``      a PostgreSQL server (``.dsn``)
``hadolint``      the hadolint binary (Dockerfile linter)

Binaries the selected tests need are built during collection, outside per-test
timeouts. With ``CI`` set, anything that cannot start fails the tests; otherwise a
missing prerequisite (no Go, no PostgreSQL) skips them with the reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from . import binaries
from .procs import MissingPrerequisite, StartError, log_tail

CLUSTER_FIXTURES = {"test_cluster", "kubeconfig", "k8s_api", "namespace", "kubectl"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(what: str, err: BaseException) -> NoReturn:
    """Fail (CI, or a real start failure) or skip (a prerequisite missing locally)."""
    message = f"{what} is unavailable: {err}"
    if in_ci() or not isinstance(err, MissingPrerequisite):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class ClusterInfo:
    kubeconfig: Path
    reused: bool
    root: Path | None = None
    startup_seconds: float = 0.0
    logs: dict[str, Path] = field(default_factory=dict)


@dataclass
class Kubectl:
    """kubectl bound to one kubeconfig: ``kubectl("get", "pods", namespace=ns)``."""

    binary: Path
    kubeconfig: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def argv(self, args: Sequence[str], namespace: str | None) -> list[str]:
        return [str(self.binary), *(["-n", namespace] if namespace else []), *args]

    def __call__(
        self,
        *args: str,
        namespace: str | None = None,
        check: bool = True,
        timeout: float = 60,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(args, namespace),
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def popen(self, *args: str, namespace: str | None = None) -> subprocess.Popen[str]:
        """A long-running kubectl (``logs -f``, ``get -w``); the caller must end it."""
        return subprocess.Popen(
            self.argv(args, namespace),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )


# -- build what the selected tests need, before any test's timeout starts -------------------

_prebuild_errors: dict[str, BaseException] = {}
_timings: dict[str, float] = {}


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if config.option.collectonly:
        return
    wanted: set[str] = set()
    for item in items:
        wanted.update(getattr(item, "fixturenames", ()))
    builds = []
    if wanted & CLUSTER_FIXTURES and not os.environ.get("KUBECONFIG"):
        builds.append(("control plane", binaries.testcluster_bin))
    if wanted & {"kubectl"}:
        builds.append(("kubectl", binaries.kubectl_bin))
    if wanted & {"minio", "fresh_minio"}:
        builds.append(("minio", binaries.minio_bin))
    if "postgres" in wanted:
        builds.append(("postgres", binaries.pg_bindir))
    if "hadolint" in wanted:
        builds.append(("hadolint", binaries.hadolint_bin))
    capture = config.pluginmanager.getplugin("capturemanager")
    for name, build in builds:
        started = time.monotonic()
        # Let the (possibly long) build's progress reach the terminal.
        ctx = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
        with ctx:
            try:
                build()
            except StartError as err:
                _prebuild_errors[name] = err
        _timings[f"{name} binaries"] = time.monotonic() - started


def _prebuilt(name: str, build: Any) -> Any:
    if name in _prebuild_errors:
        unavailable(name, _prebuild_errors[name])
    try:
        return build()
    except StartError as err:
        unavailable(name, err)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _timings:
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in _timings.items())
        terminalreporter.write_line(f"shoal test infrastructure: {parts}")


# -- the control plane ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def test_cluster(request: pytest.FixtureRequest) -> Iterator[ClusterInfo]:
    """The cluster for this session: ``KUBECONFIG``'s if set, else a fresh local one."""
    named = os.environ.get("KUBECONFIG")
    if named:
        path = Path(named.split(os.pathsep)[0])
        if not path.exists():
            unavailable("the cluster named by KUBECONFIG", StartError(f"{path} does not exist"))
        yield ClusterInfo(kubeconfig=path, reused=True)
        return
    from .controlplane import ControlPlane

    _prebuilt("control plane", binaries.testcluster_bin)
    root = Path(tempfile.mkdtemp(prefix="shoal-testcluster-"))
    plane = ControlPlane(root)
    started = time.monotonic()
    try:
        plane.start()
    except StartError as err:
        plane.stop()
        unavailable(f"the test control plane (files in {root})", err)
    info = ClusterInfo(
        kubeconfig=plane.kubeconfig,
        reused=False,
        root=root,
        startup_seconds=time.monotonic() - started,
        logs={s.name: s.log for s in plane.servers},
    )
    _timings["control plane start"] = info.startup_seconds
    request.config.stash[_cluster_key] = info
    try:
        yield info
    finally:
        plane.stop()
        if request.session.testsfailed:
            print(f"\ntest cluster files (logs) kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


_cluster_key = pytest.StashKey[ClusterInfo]()


@pytest.fixture(scope="session")
def kubeconfig(test_cluster: ClusterInfo) -> Path:
    return test_cluster.kubeconfig


@pytest.fixture(scope="session")
def k8s_api(kubeconfig: Path) -> Iterator[Any]:
    from kubernetes import config as kube_config

    api = kube_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    binary = _prebuilt("kubectl", binaries.kubectl_bin)
    return Kubectl(binary, kubeconfig)


def _namespace_name(nodeid: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", nodeid.split("::")[-1].lower()).strip("-")[:40].strip("-")
    return f"t-{base}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(request: pytest.FixtureRequest, k8s_api: Any) -> Iterator[str]:
    """A fresh namespace whose default ServiceAccount and root CA exist (pods can start)."""
    from kubernetes import client, watch

    core = client.CoreV1Api(k8s_api)
    name = _namespace_name(request.node.nodeid)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"shoal.dev/test": "1"}))
    )
    # A watch without a resourceVersion first replays what exists, so nothing is missed.
    for kind, lister, target in (
        ("serviceaccount", core.list_namespaced_service_account, "default"),
        ("configmap", core.list_namespaced_config_map, "kube-root-ca.crt"),
    ):
        found = False
        for _ in watch.Watch().stream(
            lister, name, field_selector=f"metadata.name={target}", timeout_seconds=30
        ):
            found = True
            break
        if not found:
            raise StartError(f"namespace {name}: {kind} {target} did not appear within 30s")
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            core.delete_namespace(name, propagation_policy="Background")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failed cluster test, attach the tails of the component logs to the report."""
    report = yield
    info = item.config.stash.get(_cluster_key, None)
    if info is not None and report.failed and CLUSTER_FIXTURES & set(item.fixturenames):  # type: ignore[attr-defined]
        for name in ("nodeagent", "kube-controller-manager", "kube-scheduler", "kube-apiserver"):
            if name in info.logs:
                report.sections.append((f"{name} log (tail)", log_tail(info.logs[name], 25)))
    return report


# -- tools --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hadolint() -> Path:
    path: Path = _prebuilt("hadolint", binaries.hadolint_bin)
    return path


# -- MinIO and PostgreSQL ---------------------------------------------------------------------


def _minio_server(prefix: str) -> Iterator[Any]:
    """Start MinIO in a throwaway folder, yield it, stop it (resumed first if frozen)."""
    from .services import start_minio

    _prebuilt("minio", binaries.minio_bin)
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        server = start_minio(root)
    except StartError as err:
        unavailable("MinIO", err)
    try:
        yield server
    finally:
        server.resume()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def minio() -> Iterator[Any]:
    yield from _minio_server("shoal-minio-")


@pytest.fixture
def fresh_minio() -> Iterator[Any]:
    """A MinIO server for one test only: stop or freeze it without disturbing others."""
    yield from _minio_server("shoal-minio-fresh-")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    from .services import start_postgres

    _prebuilt("postgres", binaries.pg_bindir)
    root = Path(tempfile.mkdtemp(prefix="shoal-postgres-"))
    try:
        server = start_postgres(root)
    except StartError as err:
        unavailable("PostgreSQL", err)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
