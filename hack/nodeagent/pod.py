"""One pod's life on the node: volumes, init containers, containers, status, deletion.

The worker mirrors the kubelet's observable behaviour: the phases and container states
it reports, restart policy with back-off, activeDeadlineSeconds, graceful deletion
(SIGTERM, grace period, SIGKILL, then the final delete with grace 0), termination
messages, and OOMKilled where a memory cgroup was available.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .kube import STRATEGIC, ApiError
from .logs import LogWriter
from .podspec import (
    ConfigError,
    Objects,
    VolumeError,
    account_files,
    container_argv,
    container_env,
    mounts_for,
    prepare_volumes,
    quantity,
)
from .runtime import ContainerProcess, Exit, ensure_mount_points

if TYPE_CHECKING:
    from .node import NodeRuntime

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Container:
    """Status of one container across its runs."""

    def __init__(self, spec: dict[str, Any], init: bool) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.init = init
        self.restart_count = 0
        self.state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict[str, Any] = {}
        self.container_id = ""
        self.writer: LogWriter | None = None
        self.process: ContainerProcess | None = None
        self.exit: Exit | None = None

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def succeeded(self) -> bool:
        return self.exit is not None and self.exit.code == 0 and "terminated" in self.state

    def waiting(self, reason: str, message: str | None = None) -> None:
        self.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}

    def status(self) -> dict[str, Any]:
        def full(state: dict[str, Any]) -> dict[str, Any]:
            # Explicit nulls: a strategic merge patch must drop the previous state.
            return {"waiting": None, "running": None, "terminated": None, **state}

        return {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": "",
            "containerID": self.container_id or None,
            "ready": self.running and not self.init,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": full(self.state),
            "lastState": full(self.last_state) if self.last_state else {},
        }


class PodWorker:
    def __init__(self, node: NodeRuntime, pod: dict[str, Any]) -> None:
        self.node = node
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.dir: Path = node.pods_dir / self.uid
        spec = pod["spec"]
        self.init_containers = [Container(c, True) for c in spec.get("initContainers") or []]
        self.containers = [Container(c, False) for c in spec["containers"]]
        self.start_time = time.time()
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.conditions: dict[str, dict[str, Any]] = {}
        self.initialized = not self.init_containers
        self.sandbox_ready = False
        self.stop_requested = asyncio.Event()
        self.stop_deadline = 0.0
        self.finished = asyncio.Event()
        self.gone = False  # the pod no longer exists in the API
        self._status_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._deleting = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pod {self.namespace}/{self.name}")

    def container(self, name: str) -> Container | None:
        for c in self.init_containers + self.containers:
            if c.name == name:
                return c
        return None

    def update(self, pod: dict[str, Any]) -> None:
        """A newer version of the pod arrived from the watch."""
        self.pod = pod
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            if self.finished.is_set():
                if not self._deleting:
                    self._deleting = True
                    self.node.spawn(self._finalize_deletion())
            else:
                self.request_stop(float(meta.get("deletionGracePeriodSeconds") or 0))

    def request_stop(self, grace: float) -> None:
        deadline = time.monotonic() + max(0.0, grace)
        if not self.stop_requested.is_set():
            self.stop_deadline = deadline
            self.stop_requested.set()
        else:  # a shorter grace period (e.g. a forced delete) wins
            self.stop_deadline = min(self.stop_deadline, deadline)

    def forget(self) -> None:
        """The pod was removed from the API: stop (if still running) and clean up."""
        self.gone = True
        self.request_stop(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
        self.node.spawn(self._cleanup_when_finished())

    async def kill_now(self) -> None:
        """Agent shutdown: end every container at once."""
        self.gone = True
        self.request_stop(0)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), 5)

    async def _cleanup_when_finished(self) -> None:
        await self.finished.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def _run(self) -> None:
        deadline: asyncio.Task[None] | None = None
        ads = self.pod["spec"].get("activeDeadlineSeconds")
        if ads is not None:
            deadline = asyncio.create_task(self._enforce_deadline(float(ads)))
        try:
            self._recompute()
            await self.publish()
            volumes = await self._prepare_volumes()
            if volumes is not None:
                await self._run_containers(volumes)
            self._finish()
            await self.publish()
        except Exception:
            log.exception("pod %s/%s: node agent error", self.namespace, self.name)
            for c in self.init_containers + self.containers:
                if c.process is not None:
                    c.process.kill(signal.SIGKILL)
            self.phase, self.reason = "Failed", "NodeAgentError"
            self.message = "the node agent failed running this pod; see its log"
            with contextlib.suppress(Exception):
                await self.publish()
        finally:
            if deadline is not None:
                deadline.cancel()
            self.finished.set()
        if self.pod["metadata"].get("deletionTimestamp") and not self._deleting:
            self._deleting = True
            await self._finalize_deletion()

    async def _enforce_deadline(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, self.start_time + seconds - time.time()))
        if self.finished.is_set() or self.stop_requested.is_set():
            return
        log.info("pod %s/%s: active deadline exceeded", self.namespace, self.name)
        self.reason, self.message = "DeadlineExceeded", DEADLINE_MESSAGE
        self.request_stop(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait up to ``seconds`` (a back-off or retry delay), cut short by a stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_requested.wait(), seconds)
        return self.stop_requested.is_set()

    async def _prepare_volumes(self) -> dict[str, Path] | None:
        objects = Objects(self.node.kube, self.namespace)
        attempt = 0
        while not self.stop_requested.is_set():
            try:
                volumes = await prepare_volumes(self.pod, objects, self.dir / "volumes")
            except (VolumeError, ConfigError, ApiError, httpx.HTTPError) as err:
                attempt += 1
                message = f"MountVolume.SetUp failed: {err}"
                for c in self.init_containers + self.containers:
                    c.waiting("ContainerCreating", message)
                if attempt == 1:
                    log.info("pod %s/%s: %s", self.namespace, self.name, message)
                    await self.publish()
                objects = Objects(self.node.kube, self.namespace)
                if await self._stopped_within(min(2.0 * attempt, 10.0)):
                    return None
                continue
            self.sandbox_ready = True
            (self.dir / "work").mkdir(parents=True, exist_ok=True)
            (self.dir / "work").chmod(0o777)
            return volumes
        return None

    async def _run_containers(self, volumes: dict[str, Path]) -> None:
        for c in self.init_containers:
            c.waiting("PodInitializing")
        for c in self.containers:
            c.waiting("PodInitializing" if self.init_containers else "ContainerCreating")
        self._recompute()
        await self.publish()
        for c in self.init_containers:
            if not await self._supervise(c, volumes):
                return
        self.initialized = True
        for c in self.containers:
            c.waiting("ContainerCreating")
        await asyncio.gather(*(self._supervise(c, volumes) for c in self.containers))

    # -- one container -------------------------------------------------------------------

    def _restart_policy(self, c: Container) -> str:
        policy = str(self.pod["spec"].get("restartPolicy") or "Always")
        if c.init and policy == "Always":
            return "OnFailure"
        return policy

    async def _supervise(self, c: Container, volumes: dict[str, Path]) -> bool:
        """Run ``c`` under the restart policy; True if it ended successfully."""
        if not await self._pull(c):
            return False
        backoff = self.node.config.backoff_initial
        while not self.stop_requested.is_set():
            try:
                launch = await self._launch_spec(c, volumes)
            except (ConfigError, ApiError, httpx.HTTPError) as err:
                c.waiting("CreateContainerConfigError", str(err))
                await self.publish()
                if await self._stopped_within(2.0):
                    break
                continue
            if self.stop_requested.is_set():
                break
            exit_ = await self._run_once(c, launch)
            if self.stop_requested.is_set():
                return exit_.code == 0
            policy = self._restart_policy(c)
            if policy == "Never" or (policy == "OnFailure" and exit_.code == 0):
                return exit_.code == 0
            c.last_state, c.restart_count = c.state, c.restart_count + 1
            c.waiting(
                "CrashLoopBackOff",
                f"back-off {backoff:g}s restarting failed container={c.name} "
                f"pod={self.name}_{self.namespace}({self.uid})",
            )
            self._recompute()
            await self.publish()
            if await self._stopped_within(backoff):
                break
            backoff = min(backoff * 2, self.node.config.backoff_max)
        return False

    async def _pull(self, c: Container) -> bool:
        """Images are not pulled, but one configured as unpullable fails like a bad pull."""
        image = str(c.spec.get("image", ""))
        error = self.node.config.image_rule(image).pull_error
        if error is None:
            return True
        backoff = self.node.config.backoff_initial
        c.waiting("ErrImagePull", f'failed to pull image "{image}": {error}')
        while True:
            self._recompute()
            await self.publish()
            if await self._stopped_within(backoff):
                return False
            backoff = min(backoff * 2, self.node.config.backoff_max)
            c.waiting("ImagePullBackOff", f'Back-off pulling image "{image}": {error}')

    async def _launch_spec(self, c: Container, volumes: dict[str, Path]) -> dict[str, Any]:
        config = self.node.config
        rule = config.image_rule(str(c.spec.get("image", "")))
        objects = Objects(self.node.kube, self.namespace)
        env = await container_env(self.pod, c.spec, objects, rule, config)
        argv = container_argv(c.spec, rule, env)
        pod_sc = self.pod["spec"].get("securityContext") or {}
        sc = {**pod_sc, **(c.spec.get("securityContext") or {})}
        uid = sc.get("runAsUser", rule.user)
        if sc.get("runAsNonRoot") and uid == 0:
            raise ConfigError("container's runAsUser breaks non-root policy")
        if sc.get("runAsNonRoot") and uid is None:
            uid = 65534  # the image "user" is unknown here: run as nobody, never as root
        gid = sc.get("runAsGroup", 0 if uid is not None else None)
        groups = list(pod_sc.get("supplementalGroups") or [])
        if pod_sc.get("fsGroup") is not None:
            groups.append(pod_sc["fsGroup"])
        if uid not in (None, 0):
            env["HOME"] = "/"
        run_dir = self.dir / "run" / f"{c.name}-{c.restart_count}"
        run_dir.mkdir(parents=True, exist_ok=True)
        termination_log = run_dir / "termination-log"
        termination_log.touch()
        termination_log.chmod(0o666)
        mounts: list[dict[str, Any]] = []
        image_paths: list[str] = []
        if config.mount_namespaces and os.geteuid() == 0:
            mounts = mounts_for(c.spec, volumes, termination_log)
            mounts += account_files(rule, run_dir)
            if uid not in (None, 0):
                image_paths = list(rule.image_paths)
        cwd = c.spec.get("workingDir") or rule.working_dir
        return {
            "argv": argv,
            "env": env,
            # Without a workingDir (or the image's), the pod's scratch directory on the host.
            "cwd": cwd or "",
            "workdir": None if cwd else str(self.dir / "work"),
            "mounts": mounts,
            "image_paths": image_paths,
            "uid": uid,
            "gid": gid,
            "groups": groups,
            "_run_dir": str(run_dir),
        }

    async def _run_once(self, c: Container, launch: dict[str, Any]) -> Exit:
        run_dir = Path(launch.pop("_run_dir"))
        writer = LogWriter(self.log_path(c.name, c.restart_count))
        c.writer = writer
        process = ContainerProcess(run_dir, writer, self.node.cgroups)
        limits = (c.spec.get("resources") or {}).get("limits") or {}
        memory = int(quantity(limits["memory"])) if "memory" in limits else None
        ensure_mount_points([(m["target"], m["dir"]) for m in launch["mounts"]])
        try:
            await process.start(launch, memory, f"{self.uid}-{c.name}-{c.restart_count}")
        except BaseException:
            writer.close()  # release any log follower
            raise
        c.process = process
        c.container_id = f"shoal://{self.uid[:8]}-{c.name}-{process.pid}"
        c.state = {"running": {"startedAt": _stamp(process.started_at)}}
        c.exit = None
        self._recompute()
        await self.publish()

        waiter = asyncio.ensure_future(process.wait())
        stopper = asyncio.ensure_future(self.stop_requested.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not waiter.done():
            process.kill(signal.SIGTERM)
            while not waiter.done():
                remaining = self.stop_deadline - time.monotonic()
                if remaining <= 0:
                    process.kill(signal.SIGKILL)
                    break
                # Re-check: a second, shorter delete can move the deadline forward.
                await asyncio.wait({waiter}, timeout=min(remaining, 0.5))
        exit_ = await waiter
        finished = time.time()
        c.exit = exit_
        c.state = {"terminated": self._terminated(c, exit_, run_dir, process.started_at, finished)}
        self._recompute()
        await self.publish()
        return exit_

    def _terminated(
        self, c: Container, exit_: Exit, run_dir: Path, started: float, finished: float
    ) -> dict[str, Any]:
        if exit_.start_error is not None:
            reason, code, message = "StartError", 128, exit_.start_error
        else:
            code = exit_.code
            reason = "OOMKilled" if exit_.oom_killed else ("Completed" if code == 0 else "Error")
            message = self._termination_message(c, run_dir, code)
        out: dict[str, Any] = {
            "exitCode": code,
            "reason": reason,
            "startedAt": _stamp(started),
            "finishedAt": _stamp(finished),
            "containerID": c.container_id,
        }
        if exit_.code >= 128 and not exit_.start_error:
            out["signal"] = exit_.code - 128
        if message:
            out["message"] = message
        return out

    def _termination_message(self, c: Container, run_dir: Path, code: int) -> str:
        try:
            with (run_dir / "termination-log").open("rb") as handle:
                message = handle.read(MESSAGE_LIMIT).decode(errors="replace")
        except OSError:
            message = ""
        policy = c.spec.get("terminationMessagePolicy") or "File"
        if not message and code != 0 and policy == "FallbackToLogsOnError":
            try:
                text = self.log_path(c.name, c.restart_count).read_bytes()
            except OSError:
                text = b""
            lines = [line.split(b" ", 3)[-1] for line in text.splitlines()[-FALLBACK_LINES:]]
            message = b"\n".join(lines)[-FALLBACK_BYTES:].decode(errors="replace")
        return message

    # -- status ----------------------------------------------------------------------------

    def log_path(self, container: str, restart: int) -> Path:
        return self.dir / "logs" / container / f"{restart}.log"

    def _finish(self) -> None:
        """The terminal phase, once no container will run again."""
        if self.reason == "DeadlineExceeded":
            self.phase = "Failed"
        elif all(c.succeeded for c in self.containers) and self.initialized:
            self.phase = "Succeeded"
        else:
            self.phase = "Failed"
        self._recompute()

    def _condition(self, kind: str, ok: bool, reason: str | None = None, msg: str = "") -> None:
        status = "True" if ok else "False"
        old = self.conditions.get(kind)
        changed = old is None or old["status"] != status
        cond: dict[str, Any] = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": _now() if changed else old["lastTransitionTime"],  # type: ignore[index]
            "reason": reason,
            "message": msg or None,
        }
        self.conditions[kind] = cond

    def _recompute(self) -> None:
        if self.phase not in ("Succeeded", "Failed"):
            started = any(c.running or c.restart_count or c.exit for c in self.containers)
            self.phase = "Running" if self.initialized and started else "Pending"
        terminal = self.phase in ("Succeeded", "Failed")
        self._condition("PodReadyToStartContainers", self.sandbox_ready and not terminal)
        self._condition(
            "Initialized",
            self.initialized,
            None if self.initialized else "ContainersNotInitialized",
            ""
            if self.initialized
            else "containers with incomplete status: "
            f"[{' '.join(c.name for c in self.init_containers if not c.succeeded)}]",
        )
        unready = [c.name for c in self.containers if not c.running]
        ready = not unready and not terminal
        reason = None if ready else ("PodCompleted" if terminal else "ContainersNotReady")
        msg = "" if ready or terminal else f"containers with unready status: [{' '.join(unready)}]"
        self._condition("ContainersReady", ready, reason, msg)
        self._condition("Ready", ready, reason, msg)

    def _status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "phase": self.phase,
            "conditions": list(self.conditions.values()),
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": _stamp(self.start_time),
            "containerStatuses": [c.status() for c in self.containers],
            "reason": self.reason,
            "message": self.message,
        }
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        return status

    async def publish(self) -> None:
        """Patch the pod's status to what this worker knows (whole status, idempotent)."""
        if self.gone:
            return
        async with self._status_lock:
            body = {"metadata": {"uid": self.uid}, "status": self._status()}
            path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status"
            for attempt in range(6):
                try:
                    await self.node.kube.request("PATCH", path, body=body, content_type=STRATEGIC)
                    return
                except ApiError as err:
                    if err.status in (404, 409):
                        self.gone = True  # deleted, or replaced by a pod with another uid
                        return
                    log.warning("pod %s/%s: status patch: %s", self.namespace, self.name, err)
                except httpx.HTTPError as err:
                    log.warning("pod %s/%s: status patch: %r", self.namespace, self.name, err)
                await asyncio.sleep(0.2 * 2**attempt)

    async def _finalize_deletion(self) -> None:
        """All containers are gone: remove the pod object, as the kubelet does."""
        if self.gone:
            return
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        }
        try:
            await self.node.kube.request(
                "DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{self.name}", body=body
            )
        except ApiError as err:
            if err.status not in (404, 409):
                log.warning("pod %s/%s: final delete: %s", self.namespace, self.name, err)
        except httpx.HTTPError as err:
            log.warning("pod %s/%s: final delete: %r", self.namespace, self.name, err)
