"""Argo Workflows as a test peer on the test control plane (bench/vs_argo.py).

What it takes to run Argo's own binaries, unchanged but for hack/argo/signal_linux.go,
against the real kube-apiserver and the node agent:

- `argo_dir()`: hack/argo/build.sh's cache directory (workflow-controller, argoexec and
  the module's unpacked source, whose CRDs are applied from there).
- `image_rules()`: the node agent's image rule that makes Argo's executor image run the
  argoexec binary (its init, wait and emissary commands) as a local process; the user
  containers' image has no rule, so their `command` runs on the host.
- `install()`: the minimal CRDs, the executor's Role (the wait container writes
  WorkflowTaskResults), the controller's ConfigMap.
- `start_controller()`: the controller as a local process with the admin kubeconfig
  (as bench/cluster.py runs Shoal's operator), namespaced, leader election off.

Argo v4.0.5 has published security advisories: this is a peer for measurements on
loopback, never something to expose (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cluster_parts import BenchError, kubectl  # noqa: E402
from support.procs import Server, free_port, log_tail  # noqa: E402

from shoal.kube.api import KubeApi  # noqa: E402

ARGO_VERSION = "v4.0.5"
EXECUTOR_IMAGE = f"quay.io/argoproj/argoexec:{ARGO_VERSION}"
USER_IMAGE = "busybox:1.36"
GROUP = "argoproj.io"
RBAC = "rbac.authorization.k8s.io"
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
# The CRDs the controller's informers need, from the module's manifests/base/crds/minimal
# (schemas that accept any spec: what Argo's own quick start installs).
CRDS = (
    "workflows",
    "workflowtaskresults",
    "workflowtemplates",
    "clusterworkflowtemplates",
    "cronworkflows",
    "workflowtasksets",
    "workflowartifactgctasks",
    "workfloweventbindings",
)
# Argo's documented speed tuning (docs/scaling.md, docs/environment-variables.md): a 1 s
# requeue instead of 10 s, and higher client rate limits.
TUNED_ENV = {"DEFAULT_REQUEUE_TIME": "1s"}
TUNED_ARGS = ("--qps=50", "--burst=75")


def argo_dir() -> Path:
    """Build (or find cached) Argo's binaries; the directory that holds them."""
    try:
        proc = subprocess.run(
            ["bash", str(REPO / "hack" / "argo" / "build.sh")],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise BenchError("hack/argo/build.sh took longer than an hour") from err
    if proc.returncode != 0:
        raise BenchError(f"hack/argo/build.sh failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def check_disk(items: int, argo: Path, where: Path) -> None:
    """Refuse, before anything starts, a fan-out the disk cannot hold.

    Argo's init container copies argoexec (about 150 MB) into every pod's emptyDir, and
    a fan-out's pods live until its workflow is deleted, so 500 items need some 75 GB
    under the node agent's pod directories (a kubelet's emptyDirs would hold the same).
    """
    per_pod = (argo / "argoexec").stat().st_size
    need = int(items * per_pod * 1.2)
    free = shutil.disk_usage(where).free
    if free < need:
        fits = max(0.01, round(free / (1.2 * per_pod) / 500, 2))
        raise BenchError(
            f"the {items}-item Argo fan-out needs about {need / 2**30:.0f} GiB free under "
            f"{where} (each Argo pod copies the {per_pod / 2**20:.0f} MiB argoexec into its "
            f"emptyDir) and {free / 2**30:.0f} GiB are free: free some, or run --scale {fits}"
        )


def image_rules(directory: Path) -> list[dict[str, Any]]:
    """The node agent's rule for Argo's executor image: argoexec on the container PATH.

    The controller's init container runs `argoexec init`, which copies the binary into
    the shared emptyDir /var/run/argo; the main container then runs
    `/var/run/argo/argoexec emissary -- <command>`, the wait container `argoexec wait`."""
    return [
        {
            "match": EXECUTOR_IMAGE.rsplit(":", 1)[0],
            "entrypoint": [str(directory / "argoexec")],
            "env": {"PATH": f"{directory}:/usr/local/bin:/usr/bin:/bin"},
        }
    ]


def _executor_role(namespace: str) -> list[dict[str, Any]]:
    """What the executor's wait container needs (Argo's documented minimal executor RBAC)."""
    role = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": "argo-executor", "namespace": namespace},
        "rules": [
            {
                "apiGroups": [GROUP],
                "resources": ["workflowtaskresults"],
                "verbs": ["create", "patch"],
            },
        ],
    }
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "argo-executor", "namespace": namespace},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "argo-executor"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}],
    }
    return [role, binding]


def _configmap(namespace: str, metrics_port: int) -> dict[str, Any]:
    """The controller's ConfigMap: defaults, but its metrics on a free loopback port."""
    config = {"metricsConfig": {"enabled": True, "port": metrics_port, "secure": False}}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "workflow-controller-configmap", "namespace": namespace},
        "data": {key: json.dumps(value) for key, value in config.items()},
    }


def apply_crds(kubeconfig: Path, directory: Path) -> None:
    minimal = directory / "src" / "manifests" / "base" / "crds" / "minimal"
    files = [str(minimal / f"argoproj.io_{name}.yaml") for name in CRDS]
    args = [a for f in files for a in ("-f", f)]
    # Server-side: some of these CRDs are larger than client-side apply's annotation.
    kubectl(kubeconfig, "apply", "--server-side", *args)
    kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", *args)


def install(kubeconfig: Path, namespace: str, metrics_port: int, scratch: Path) -> None:
    """The executor's RBAC and the controller's ConfigMap in `namespace`."""
    docs = [*_executor_role(namespace), _configmap(namespace, metrics_port)]
    manifest = scratch / f"argo-{namespace}.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    kubectl(kubeconfig, "apply", "-f", str(manifest))


@dataclass
class Controller:
    """A running workflow-controller."""

    name: str
    server: Server
    namespace: str

    @property
    def pid(self) -> int:
        return self.server.pid


async def start_controller(
    directory: Path,
    kubeconfig: Path,
    namespace: str,
    logs: Path,
    tuned: bool,
    api: KubeApi,
) -> Controller:
    """Start the controller for `namespace`; return once it has listed its Workflows
    (a probe Workflow is created and must be picked up, so the informers are synced)."""
    name = "argo-tuned" if tuned else "argo-default"
    metrics_port = free_port()
    install(kubeconfig, namespace, metrics_port, logs)
    argv = [
        str(directory / "workflow-controller"),
        f"--kubeconfig={kubeconfig}",
        "--namespaced",
        f"--managed-namespace={namespace}",
        f"--namespace={namespace}",
        f"--executor-image={EXECUTOR_IMAGE}",
        "--executor-image-pull-policy=IfNotPresent",
        "--loglevel=info",
        *(TUNED_ARGS if tuned else ()),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env["LEADER_ELECTION_DISABLE"] = "true"
    if tuned:
        env.update(TUNED_ENV)
    server = Server(name, argv, logs / f"{name}.log", env=env)
    controller = Controller(name, server, namespace)
    await _wait_ready(controller, api)
    return controller


async def _wait_ready(controller: Controller, api: KubeApi) -> None:
    """Ready once it marks a probe Workflow (no pods: it has no templates to run)."""
    path = workflows_path(controller.namespace)
    probe = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "ready-probe"},
        "spec": {"entrypoint": "none", "templates": [{"name": "none", "suspend": {}}]},
    }
    await api.create(path, probe)
    deadline = time.monotonic() + 120
    while True:  # before it is up there is nothing to watch for; a short bounded poll
        controller.server.check_alive()
        with contextlib.suppress(Exception):
            got = await api.get(f"{path}/ready-probe")
            if (got.get("status") or {}).get("phase"):
                await api.delete(f"{path}/ready-probe")
                return
        if time.monotonic() > deadline:
            raise BenchError(
                f"{controller.name} did not pick up a Workflow within 120s; "
                f"last lines of {controller.server.log}:\n{log_tail(controller.server.log)}"
            )
        await asyncio.sleep(0.2)


def workflows_path(namespace: str, name: str | None = None) -> str:
    base = f"/apis/{GROUP}/v1alpha1/namespaces/{namespace}/workflows"
    return f"{base}/{name}" if name else base


# -- the workloads, as Argo users write them ------------------------------------------


def _noop(name: str = "noop") -> dict[str, Any]:
    return {
        "name": name,
        "inputs": {"parameters": [{"name": "i", "value": "0"}]},
        "container": {"image": USER_IMAGE, "command": ["echo", "{{inputs.parameters.i}}"]},
    }


def _workflow(name: str, tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    templates = [{"name": "main", "dag": {"tasks": tasks}}, *spec.pop("extra", []), _noop()]
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"entrypoint": "main", "templates": templates, **spec},
    }


def _arg(value: str) -> dict[str, Any]:
    return {"parameters": [{"name": "i", "value": value}]}


def chain(name: str, length: int) -> dict[str, Any]:
    tasks = [
        {
            "name": f"n{i}",
            "template": "noop",
            "arguments": _arg(str(i)),
            **({"dependencies": [f"n{i - 1}"]} if i else {}),
        }
        for i in range(length)
    ]
    return _workflow(name, tasks)


def fan_out(name: str, items: int, parallelism: int) -> dict[str, Any]:
    """A step prints a JSON list (its `outputs.result`); `withParam` fans out over it."""
    listing = {
        "name": "list",
        "container": {"image": USER_IMAGE, "command": ["echo", json.dumps(list(range(items)))]},
    }
    tasks = [
        {"name": "list", "template": "list"},
        {
            "name": "items",
            "template": "noop",
            "dependencies": ["list"],
            "withParam": "{{tasks.list.outputs.result}}",
            "arguments": _arg("{{item}}"),
        },
    ]
    return _workflow(name, tasks, parallelism=parallelism, extra=[listing])


def single(name: str) -> dict[str, Any]:
    return _workflow(name, [{"name": "one", "template": "noop", "arguments": _arg("1")}])
