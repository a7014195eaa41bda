"""The test control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
(all real, from ``hack/testcluster``) and the node agent (``hack/nodeagent``).

``ControlPlane(root).start()`` generates a fresh PKI, picks free loopback ports, starts
every component, waits until nodes are Ready and the controllers have populated the
``default`` namespace, and writes ``root/admin.kubeconfig``. ``stop()`` ends them.
The same code backs the pytest fixture and ``make cluster-up``.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from . import binaries
from .pki import Authority, CertPair, service_account_keys
from .procs import Server, StartError, free_port, stop_pid, wait_until

REPO = binaries.REPO

# The controllers the tests rely on. Beyond the issue's list: node-lifecycle removes the
# not-ready taint from new nodes, root-ca-certificate-publisher provides the
# kube-root-ca.crt ConfigMap every service-account token volume needs, and
# clusterrole-aggregation fills the admin/edit/view roles.
CONTROLLERS = (
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "replicaset-controller",
    "deployment-controller",
    "statefulset-controller",
    "disruption-controller",
    "pod-garbage-collector-controller",
    "node-lifecycle-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "resourcequota-controller",
)

SERVICE_CIDR = "10.96.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass
class NodeSpec:
    """A node the agent registers; capacity is what the scheduler sees."""

    name: str
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110


def default_images() -> list[dict[str, Any]]:
    """Image -> local entrypoint mapping for the node agent.

    Any image not listed runs the pod's ``command``/``args`` on the host. The Shoal
    images run the repository's programs: the worker image ``shoal-worker``, the
    operator image ``shoal operator`` (Dockerfile.operator's ENTRYPOINT).
    """
    venv_bin = REPO / ".venv" / "bin"
    # What the images hold: the venv's interpreter (its prefix, e.g. a pyenv build below
    # a 0700 /root) and the repository (venv, sources, examples). The node agent makes
    # them reachable for containers that run as a non-root user (runAsUser 65532).
    interpreter = Path(os.path.realpath(venv_bin / "python")).parents[1]
    image_paths = [str(interpreter), str(REPO)]
    # Both Dockerfiles `useradd` uid 65532 (kopf looks its user name up at start).
    image_users = [{"name": "shoal", "uid": 65532, "gid": 65532}]
    images: list[dict[str, Any]] = [
        # The worker image as a user would build it: shoal-worker plus their jobs, here
        # the examples' (examples/jobs.py), registered by importing the module.
        {
            "match": "*shoal*worker*",
            "entrypoint": [str(venv_bin / "shoal-worker")],
            "env": {"SHOAL_IMPORT": "jobs", "PYTHONPATH": str(REPO / "examples")},
            "imagePaths": image_paths,
            "users": image_users,
        },
        # For the node agent's own tests: an image with both ENTRYPOINT and CMD.
        {
            "match": "registry.invalid/shoal-test/echo",
            "entrypoint": ["echo", "entrypoint"],
            "cmd": ["default-cmd"],
            "env": {"FROM_IMAGE": "yes"},
        },
        # The .invalid TLD never resolves (RFC 2606): such images fail to "pull".
        {"match": "*.invalid/*", "pullError": "not found (the .invalid domain never resolves)"},
        # The operator image (after the rule above, so registry.invalid/shoal/operator
        # still fails to pull): Dockerfile.operator's ENTRYPOINT, ENV and (no) WORKDIR;
        # the Helm chart's Deployment sets everything else through env.
        {
            "match": "*shoal*operator*",
            "entrypoint": [str(venv_bin / "shoal"), "operator"],
            # The test rig keeps every server on loopback (a real image listens on all).
            "env": {
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
                "SHOAL_METRICS_HOST": "127.0.0.1",
            },
            "workingDir": "/",
            "imagePaths": image_paths,
            "users": image_users,
        },
    ]
    extra = os.environ.get("SHOAL_TEST_IMAGES")
    if extra:
        loaded = yaml.safe_load(Path(extra).read_text()) or []
        images = list(loaded.get("images", []) if isinstance(loaded, dict) else loaded) + images
    return images


def _kubeconfig(path: Path, server: str, ca: Path, user: str, pair: CertPair) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "shoal-test",
                "cluster": {"server": server, "certificate-authority": str(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate": str(pair.cert), "client-key": str(pair.key)},
            }
        ],
        "contexts": [{"name": "shoal-test", "context": {"cluster": "shoal-test", "user": user}}],
        "current-context": "shoal-test",
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def _ssl_context(ca: Path, pair: CertPair | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if pair is not None:
        ctx.load_cert_chain(str(pair.cert), str(pair.key))
    return ctx


@dataclass
class ControlPlane:
    """A running (or stopped) test control plane rooted at ``root``."""

    root: Path
    nodes: Sequence[NodeSpec] = field(
        default_factory=lambda: [NodeSpec("shoal-node-1"), NodeSpec("shoal-node-2")]
    )
    images: list[dict[str, Any]] = field(default_factory=default_images)
    tie_to_parent: bool = True
    servers: list[Server] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def server_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    # -- start -----------------------------------------------------------------------

    def start(self, timeout: float = 240.0) -> None:
        """Start every component; raise StartError (with logs) if any is not up in time."""
        binary = binaries.testcluster_bin()
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        pki = self.root / "pki"
        logs = self.root / "logs"
        names = ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler")
        self.ports = {name: free_port() for name in names}
        for node in self.nodes:
            self.ports[f"node/{node.name}"] = free_port()

        ca = Authority(pki)
        sa = service_account_keys(pki)
        apiserver_cert = ca.issue(
            "apiserver",
            "kube-apiserver",
            server=True,
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            ips=("127.0.0.1", "10.96.0.1"),
        )
        kubelet_client = ca.issue(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            client=True,
        )
        admin = ca.issue("admin", "shoal-test-admin", orgs=("system:masters",), client=True)
        cm = ca.issue("controller-manager", "system:kube-controller-manager", client=True)
        sched = ca.issue("scheduler", "system:kube-scheduler", client=True)
        node_serving = ca.issue(
            "nodeagent-serving",
            "shoal-nodeagent",
            server=True,
            dns_names=("localhost",),
            ips=("127.0.0.1",),
        )
        # The aggregation layer's front proxy has its own CA, as kubeadm sets it up; without
        # it the controller-manager and scheduler log request-header errors forever.
        front_proxy_ca = Authority(pki / "front-proxy")
        front_proxy = front_proxy_ca.issue("front-proxy-client", "front-proxy-client", client=True)

        server = f"https://127.0.0.1:{self.ports['apiserver']}"
        _kubeconfig(self.kubeconfig, server, ca.cert_path, "shoal-test-admin", admin)
        cm_kc = _kubeconfig(
            self.root / "controller-manager.kubeconfig",
            server,
            ca.cert_path,
            "system:kube-controller-manager",
            cm,
        )
        sched_kc = _kubeconfig(
            self.root / "scheduler.kubeconfig", server, ca.cert_path, "system:kube-scheduler", sched
        )

        etcd = Server(
            "etcd",
            [
                str(binary),
                "etcd",
                f"--data-dir={self.root / 'etcd'}",
                f"--client-port={self.ports['etcd']}",
                f"--peer-port={self.ports['etcd-peer']}",
            ],
            logs / "etcd.log",
            tie_to_parent=self.tie_to_parent,
        )
        self.servers.append(etcd)
        self._save_state()
        etcd_url = f"http://127.0.0.1:{self.ports['etcd']}"
        wait_until(
            "etcd /health",
            lambda: httpx.get(f"{etcd_url}/health", timeout=2).status_code == 200,
            60,
            servers=[etcd],
        )

        apiserver = Server(
            "kube-apiserver",
            [
                str(binary),
                "kube-apiserver",
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports['apiserver']}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={apiserver_cert.cert}",
                f"--tls-private-key-file={apiserver_cert.key}",
                f"--client-ca-file={ca.cert_path}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # Endpoints may not hold loopback addresses, and 127.0.0.1 is all we have.
                "--endpoint-reconciler-type=none",
                f"--kubelet-client-certificate={kubelet_client.cert}",
                f"--kubelet-client-key={kubelet_client.key}",
                f"--kubelet-certificate-authority={ca.cert_path}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--requestheader-client-ca-file={front_proxy_ca.cert_path}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={front_proxy.cert}",
                f"--proxy-client-key-file={front_proxy.key}",
                "--allow-privileged=true",
                "--profiling=false",
                "--event-ttl=1h",
            ],
            logs / "kube-apiserver.log",
            tie_to_parent=self.tie_to_parent,
        )
        self.servers.append(apiserver)
        self._save_state()
        admin_ctx = _ssl_context(ca.cert_path, admin)

        def ready() -> bool:
            return httpx.get(f"{server}/readyz", verify=admin_ctx, timeout=5).status_code == 200

        wait_until("kube-apiserver /readyz", ready, 120, servers=[etcd, apiserver])

        def component(name: str, sub: str, port: int, kubeconfig: Path, extra: list[str]) -> Server:
            return Server(
                name,
                [
                    str(binary),
                    sub,
                    f"--kubeconfig={kubeconfig}",
                    f"--authentication-kubeconfig={kubeconfig}",
                    f"--authorization-kubeconfig={kubeconfig}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={port}",
                    f"--cert-dir={self.root / name}",
                    "--profiling=false",
                    *extra,
                ],
                logs / f"{name}.log",
                tie_to_parent=self.tie_to_parent,
            )

        self.servers.append(
            component(
                "kube-controller-manager",
                "kube-controller-manager",
                self.ports["controller-manager"],
                cm_kc,
                [
                    f"--controllers={','.join(CONTROLLERS)}",
                    "--use-service-account-credentials=true",
                    f"--service-account-private-key-file={sa.key}",
                    f"--root-ca-file={ca.cert_path}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    "--kube-api-qps=100",
                    "--kube-api-burst=200",
                    # Jobs and ReplicaSets react within a second instead of batching.
                    "--concurrent-job-syncs=10",
                ],
            )
        )
        self.servers.append(
            component(
                "kube-scheduler",
                "kube-scheduler",
                self.ports["scheduler"],
                sched_kc,
                ["--kube-api-qps=100", "--kube-api-burst=200"],
            )
        )
        self.servers.append(self._start_agent(ca, node_serving))
        self._save_state()

        client = httpx.Client(base_url=server, verify=admin_ctx, timeout=5)
        remaining = max(30.0, timeout - (time.monotonic() - started))
        try:
            wait_until(
                f"{len(self.nodes)} Ready node(s)",
                lambda: self._nodes_ready(client),
                remaining,
                servers=self.servers,
            )
            wait_until(
                "the default service account and kube-root-ca.crt in namespace default",
                lambda: (
                    client.get("/api/v1/namespaces/default/serviceaccounts/default").is_success
                    and client.get(
                        "/api/v1/namespaces/default/configmaps/kube-root-ca.crt"
                    ).is_success
                ),
                60,
                servers=self.servers,
            )
            wait_until(
                "kube-scheduler /healthz",
                lambda: (
                    httpx.get(
                        f"https://127.0.0.1:{self.ports['scheduler']}/healthz",
                        verify=False,
                        timeout=2,
                    ).status_code
                    == 200
                ),
                60,
                servers=self.servers,
            )
        finally:
            client.close()
        self.ports["startup_ms"] = int((time.monotonic() - started) * 1000)
        self._save_state()

    def _start_agent(self, ca: Authority, serving: CertPair) -> Server:
        nodes = []
        for node in self.nodes:
            pair = ca.issue(
                f"node-{node.name}",
                f"system:node:{node.name}",
                orgs=("system:nodes",),
                client=True,
            )
            nodes.append(
                {
                    "name": node.name,
                    "port": self.ports[f"node/{node.name}"],
                    "client_cert": str(pair.cert),
                    "client_key": str(pair.key),
                    "capacity": {"cpu": node.cpu, "memory": node.memory, "pods": str(node.pods)},
                }
            )
        venv_bin = REPO / ".venv" / "bin"
        config = {
            "apiserver": self.server_url,
            "ca": str(ca.cert_path),
            "serving_cert": str(serving.cert),
            "serving_key": str(serving.key),
            "state_dir": str(self.root / "nodeagent"),
            "nodes": nodes,
            "images": self.images,
            # What a container's PATH is: the repo's venv first (the worker image has the
            # shoal package installed), then the host's.
            "path": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            # Crash-loop back-off: the kubelet's 10s..300s would make restart tests slow.
            "backoff_initial": 2,
            "backoff_max": 60,
        }
        config_path = self.root / "nodeagent.json"
        config_path.write_text(json.dumps(config, indent=2))
        env = {**os.environ, "PYTHONPATH": str(REPO / "hack"), "PYTHONUNBUFFERED": "1"}
        env.pop("KUBECONFIG", None)
        return Server(
            "nodeagent",
            [sys.executable, "-m", "nodeagent", "--config", str(config_path)],
            self.root / "logs" / "nodeagent.log",
            env=env,
            tie_to_parent=self.tie_to_parent,
        )

    def _nodes_ready(self, client: httpx.Client) -> bool:
        items = client.get("/api/v1/nodes").json().get("items", [])
        ready = 0
        for node in items:
            conditions = node.get("status", {}).get("conditions", [])
            taints = node.get("spec", {}).get("taints") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions) and not any(
                t.get("key") == "node.kubernetes.io/not-ready" for t in taints
            ):
                ready += 1
        return ready >= len(self.nodes)

    # -- state and stop --------------------------------------------------------------

    def _save_state(self) -> None:
        state = {
            "kubeconfig": str(self.kubeconfig),
            "ports": self.ports,
            "pids": {s.name: s.pid for s in self.servers},
        }
        self.state_file.write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        """Stop components in reverse start order (the node agent first kills its pods)."""
        for server in reversed(self.servers):
            server.stop(grace=15 if server.name == "nodeagent" else 10)
        self.servers.clear()


def stop_from_state(root: Path) -> list[str]:
    """Stop a control plane started by another process (``make cluster-down``)."""
    state_file = root / "state.json"
    if not state_file.exists():
        return []
    state = json.loads(state_file.read_text())
    stopped = []
    for name, pid in reversed(list(state.get("pids", {}).items())):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        # Only ever signal our own servers, never a process that reused the pid.
        if str(root).encode() not in cmdline:
            continue
        stop_pid(pid, 15 if name == "nodeagent" else 10)
        stopped.append(name)
    state_file.unlink()
    return stopped


def raise_if_not_ready(plane: ControlPlane) -> None:
    for server in plane.servers:
        server.check_alive()
    if not plane.kubeconfig.exists():
        raise StartError("control plane has no kubeconfig")
