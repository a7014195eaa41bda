"""One Node: registration, Lease and status heartbeats, and the pods bound to it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx

from .config import AgentConfig, NodeConfig
from .kube import STRATEGIC, ApiError, Kube
from .pod import PodWorker
from .runtime import MemoryCgroups

log = logging.getLogger(__name__)

KUBELET_VERSION = "v1.37.2"
LEASE_SECONDS = 40
LEASE_RENEW = 10.0
STATUS_EVERY = 60.0
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _micro_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def _read(path: str, default: str) -> str:
    try:
        return Path(path).read_text().strip() or default
    except OSError:
        return default


class NodeRuntime:
    def __init__(
        self,
        config: AgentConfig,
        node: NodeConfig,
        cgroups: MemoryCgroups,
    ) -> None:
        self.config = config
        self.node = node
        self.name = node.name
        self.cgroups = cgroups
        self.kube = Kube(config.apiserver, config.ca, node.client_cert, node.client_key)
        self.pods_dir = config.state_dir / node.name / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.workers: dict[str, PodWorker] = {}
        self.by_name: dict[tuple[str, str], PodWorker] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._started = _now()
        self.node_uid = ""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a fire-and-forget coroutine, keeping a reference until it finishes."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the Node object -----------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        capacity = {"ephemeral-storage": "100Gi", **self.node.capacity}
        heartbeat = _now()

        def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": self._started,
            }

        return {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
                condition("Ready", "True", "KubeletReady", "shoal node agent is posting ready"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.node.port}},
            "nodeInfo": {
                "machineID": _read("/etc/machine-id", uuid.uuid4().hex),
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.name)),
                "bootID": _read("/proc/sys/kernel/random/boot_id", str(uuid.uuid4())),
                "kernelVersion": platform.release(),
                "osImage": "Shoal node agent (pods run as local processes)",
                "containerRuntimeVersion": "shoal-nodeagent://0.1.0",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": _ARCH.get(platform.machine(), platform.machine()),
            },
        }

    async def register(self) -> None:
        path = f"/api/v1/nodes/{self.name}"
        if await self.kube.get(path) is None:
            arch = _ARCH.get(platform.machine(), platform.machine())
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": self.name,
                    "labels": {
                        "kubernetes.io/hostname": self.name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": arch,
                        "beta.kubernetes.io/os": "linux",
                        "beta.kubernetes.io/arch": arch,
                        "shoal.dev/node-agent": "true",
                        # Tests of OOMKilled look here: limits need a memory cgroup.
                        "shoal.dev/memory-limits": str(self.cgroups.base is not None).lower(),
                    },
                },
                "spec": {},
            }
            with contextlib.suppress(ApiError):
                await self.kube.request("POST", "/api/v1/nodes", body=body)
        node = await self.kube.request("GET", path)
        self.node_uid = str(node["metadata"]["uid"])
        await self._post_status()
        log.info("node %s registered (kubelet API on 127.0.0.1:%d)", self.name, self.node.port)

    async def _post_status(self) -> None:
        await self.kube.request(
            "PATCH",
            f"/api/v1/nodes/{self.name}/status",
            body={"status": self._status()},
            content_type=STRATEGIC,
        )

    async def heartbeat_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY)
            try:
                await self._post_status()
            except (ApiError, httpx.HTTPError) as err:
                log.warning("node %s: status heartbeat failed: %s", self.name, err)

    async def heartbeat_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        while True:
            try:
                lease = await self.kube.get(path)
                spec = {
                    "holderIdentity": self.name,
                    "leaseDurationSeconds": LEASE_SECONDS,
                    "renewTime": _micro_now(),
                }
                if lease is None:
                    body = {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {
                            "name": self.name,
                            "namespace": "kube-node-lease",
                            "ownerReferences": [
                                {
                                    "apiVersion": "v1",
                                    "kind": "Node",
                                    "name": self.name,
                                    "uid": self.node_uid,
                                }
                            ],
                        },
                        "spec": spec,
                    }
                    await self.kube.request("POST", path.rsplit("/", 1)[0], body=body)
                else:
                    lease["spec"].update(spec)
                    await self.kube.request("PUT", path, body=lease)
            except (ApiError, httpx.HTTPError) as err:
                log.warning("node %s: lease renewal failed: %s", self.name, err)
            await asyncio.sleep(LEASE_RENEW)

    # -- pods ----------------------------------------------------------------------------

    async def watch_pods(self) -> None:
        params = {"fieldSelector": f"spec.nodeName={self.name}"}
        async for kind, obj in self.kube.watch("/api/v1/pods", params):
            if kind == "SYNC":
                seen = set()
                for pod in obj.get("items", []):
                    seen.add(pod["metadata"]["uid"])
                    self._observe(pod)
                for uid in set(self.workers) - seen:
                    self._forget(uid)
            elif kind == "DELETED":
                self._forget(obj["metadata"]["uid"])
            else:
                self._observe(obj)

    def _observe(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        worker = self.workers.get(meta["uid"])
        if worker is not None:
            worker.update(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            # Finished before this agent knew it (an agent restart): only tidy up.
            if meta.get("deletionTimestamp"):
                stale = PodWorker(self, pod)
                self.spawn(stale._finalize_deletion())
            return
        worker = PodWorker(self, pod)
        self.workers[worker.uid] = worker
        self.by_name[(worker.namespace, worker.name)] = worker
        log.info("pod %s/%s: starting", worker.namespace, worker.name)
        worker.start()
        if meta.get("deletionTimestamp"):
            worker.update(pod)

    def _forget(self, uid: str) -> None:
        worker = self.workers.pop(uid, None)
        if worker is None:
            return
        key = (worker.namespace, worker.name)
        if self.by_name.get(key) is worker:
            del self.by_name[key]
        worker.forget()

    async def shutdown(self) -> None:
        await asyncio.gather(*(w.kill_now() for w in self.workers.values()))
        await self.kube.close()
