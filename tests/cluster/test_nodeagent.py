"""The node agent's emulation of the kubelet: what Shoal's pods will depend on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from support.waits import pod_phase, wait_for, wait_for_log_line, wait_gone

pytestmark = pytest.mark.cluster

BUSYBOX = "busybox:1.36"


def _pod(name: str, script: str, **spec: Any) -> client.V1Pod:
    container_extra = spec.pop("container", {})
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1PodSpec(
            restart_policy=spec.pop("restart_policy", "Never"),
            containers=[
                client.V1Container(
                    name="main", image=BUSYBOX, command=["sh", "-c", script], **container_extra
                )
            ],
            **spec,
        ),
    )


def _finished(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 60) -> Any:
    return wait_for(
        core.list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={name}",
        predicate=pod_phase("Succeeded", "Failed"),
        timeout=timeout,
        description=f"pod {name} to finish",
    )


def test_env_volumes_and_termination_message(namespace: str, k8s_api: Any) -> None:
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="creds"), string_data={"token": "s3cr3t"}
        ),
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"mode": "fast"}),
    )
    script = (
        'echo "plain=$PLAIN secret=$SECRET mode=$MODE pod=$POD_NAME ns=$POD_NS"'
        ' "expanded=$EXPANDED"; '
        "cat /shared/from-init; "
        "echo token-bytes=$(wc -c < /var/run/secrets/kubernetes.io/serviceaccount/token); "
        "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; "
        'printf "all good" > /tmp/result/msg'
    )
    pod = _pod(
        "env",
        script,
        init_containers=[
            client.V1Container(
                name="init",
                image=BUSYBOX,
                command=["sh", "-c", "echo written-by-init > /shared/from-init"],
                volume_mounts=[client.V1VolumeMount(name="shared", mount_path="/shared")],
            )
        ],
        volumes=[
            client.V1Volume(name="shared", empty_dir=client.V1EmptyDirVolumeSource()),
            client.V1Volume(name="result", empty_dir=client.V1EmptyDirVolumeSource()),
        ],
        container={
            "env": [
                client.V1EnvVar(name="PLAIN", value="p"),
                client.V1EnvVar(name="EXPANDED", value="$(PLAIN)-x"),
                client.V1EnvVar(
                    name="SECRET",
                    value_from=client.V1EnvVarSource(
                        secret_key_ref=client.V1SecretKeySelector(name="creds", key="token")
                    ),
                ),
                client.V1EnvVar(
                    name="MODE",
                    value_from=client.V1EnvVarSource(
                        config_map_key_ref=client.V1ConfigMapKeySelector(
                            name="settings", key="mode"
                        )
                    ),
                ),
                client.V1EnvVar(
                    name="POD_NAME",
                    value_from=client.V1EnvVarSource(
                        field_ref=client.V1ObjectFieldSelector(field_path="metadata.name")
                    ),
                ),
                client.V1EnvVar(
                    name="POD_NS",
                    value_from=client.V1EnvVarSource(
                        field_ref=client.V1ObjectFieldSelector(field_path="metadata.namespace")
                    ),
                ),
            ],
            "volume_mounts": [
                client.V1VolumeMount(name="shared", mount_path="/shared"),
                client.V1VolumeMount(name="result", mount_path="/tmp/result"),
            ],
            "termination_message_path": "/tmp/result/msg",
        },
    )
    core.create_namespaced_pod(namespace, pod)
    done = _finished(core, namespace, "env")
    output = core.read_namespaced_pod_log("env", namespace)
    assert done.status.phase == "Succeeded", output
    lines = output.splitlines()
    assert lines[0] == f"plain=p secret=s3cr3t mode=fast pod=env ns={namespace} expanded=p-x"
    assert lines[1] == "written-by-init"
    assert int(lines[2].removeprefix("token-bytes=")) > 100
    assert lines[3] == namespace
    assert done.status.container_statuses[0].state.terminated.message == "all good"
    assert done.status.init_container_statuses[0].state.terminated.reason == "Completed"


def test_image_mapping_supplies_entrypoint_and_cmd(namespace: str, k8s_api: Any) -> None:
    core = client.CoreV1Api(k8s_api)
    image = "registry.invalid/shoal-test/echo:1.0"
    for name, args in (("defaults", None), ("with-args", ["given", "$(FROM_IMAGE)"])):
        core.create_namespaced_pod(
            namespace,
            client.V1Pod(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    containers=[client.V1Container(name="main", image=image, args=args)],
                ),
            ),
        )
    for name, expected in (
        ("defaults", "entrypoint default-cmd\n"),
        ("with-args", "entrypoint given yes\n"),
    ):
        assert _finished(core, namespace, name).status.phase == "Succeeded"
        assert core.read_namespaced_pod_log(name, namespace) == expected


def test_unpullable_image_stays_pending_in_image_pull_backoff(namespace: str, k8s_api: Any) -> None:
    core = client.CoreV1Api(k8s_api)
    image = "registry.invalid/no/such-image:1"
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="nopull"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="main", image=image)]),
        ),
    )

    def backing_off(pod: Any) -> bool:
        statuses = (pod.status and pod.status.container_statuses) or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting is not None and waiting.reason == "ImagePullBackOff"

    pod = wait_for(
        core.list_namespaced_pod,
        namespace,
        field_selector="metadata.name=nopull",
        predicate=backing_off,
        timeout=30,
        description="pod nopull to back off pulling its image",
    )
    assert pod.status.phase == "Pending"
    assert image in pod.status.container_statuses[0].state.waiting.message


def test_missing_executable_is_a_start_error(namespace: str, k8s_api: Any) -> None:
    core = client.CoreV1Api(k8s_api)
    pod = _pod("nocmd", "")
    pod.spec.containers[0].command = ["no-such-program-anywhere"]
    core.create_namespaced_pod(namespace, pod)
    done = _finished(core, namespace, "nocmd")
    terminated = done.status.container_statuses[0].state.terminated
    assert done.status.phase == "Failed"
    assert (terminated.reason, terminated.exit_code) == ("StartError", 128)
    assert "executable file not found" in terminated.message


def test_active_deadline_fails_the_pod(namespace: str, k8s_api: Any) -> None:
    core = client.CoreV1Api(k8s_api)
    pod = _pod("slow", "sleep 600", active_deadline_seconds=2, termination_grace_period_seconds=1)
    core.create_namespaced_pod(namespace, pod)
    done = _finished(core, namespace, "slow", timeout=30)
    assert done.status.phase == "Failed"
    assert done.status.reason == "DeadlineExceeded"
    terminated = done.status.container_statuses[0].state.terminated
    assert terminated.exit_code in (137, 143)


def test_delete_sends_sigterm_then_sigkill_after_the_grace_period(
    namespace: str, k8s_api: Any, tmp_path: Path
) -> None:
    core = client.CoreV1Api(k8s_api)
    host = client.V1Volume(name="host", host_path=client.V1HostPathVolumeSource(path=str(tmp_path)))
    mount = [client.V1VolumeMount(name="host", mount_path="/out")]
    # One pod leaves on SIGTERM, the other ignores it and must be SIGKILLed after 2s.
    polite = _pod(
        "polite",
        "trap 'echo term > /out/polite; exit 0' TERM; echo up; while true; do sleep 0.1; done",
        volumes=[host],
        container={"volume_mounts": mount},
        termination_grace_period_seconds=30,
    )
    stubborn = _pod(
        "stubborn",
        "trap 'echo ignored > /out/stubborn' TERM; echo up; while true; do sleep 0.1; done",
        volumes=[host],
        container={"volume_mounts": mount},
        termination_grace_period_seconds=2,
    )
    for pod in (polite, stubborn):
        core.create_namespaced_pod(namespace, pod)
    for name in ("polite", "stubborn"):
        wait_for(
            core.list_namespaced_pod,
            namespace,
            field_selector=f"metadata.name={name}",
            predicate=pod_phase("Running"),
            description=f"pod {name} to run",
        )
        # Running means the process exists, not that the shell has set its trap yet.
        wait_for_log_line(core, namespace, name, "up")
    started = time.monotonic()
    for name in ("polite", "stubborn"):
        core.delete_namespaced_pod(name, namespace)
    wait_gone(
        core.list_namespaced_pod,
        namespace,
        field_selector="metadata.name=polite",
        timeout=20,
        description="pod polite to be deleted",
    )
    polite_seconds = time.monotonic() - started
    wait_gone(
        core.list_namespaced_pod,
        namespace,
        field_selector="metadata.name=stubborn",
        timeout=20,
        description="pod stubborn to be deleted",
    )
    stubborn_seconds = time.monotonic() - started
    assert (tmp_path / "polite").read_text() == "term\n"
    assert (tmp_path / "stubborn").read_text() == "ignored\n"
    assert polite_seconds < 15  # far below its 30s grace period: SIGTERM ended it
    assert 2 <= stubborn_seconds < 15


def test_restart_on_failure_keeps_previous_logs(namespace: str, k8s_api: Any) -> None:
    core = client.CoreV1Api(k8s_api)
    script = (
        "if [ -e /state/once ]; then echo second run; exit 0; fi; "
        "touch /state/once; echo first run; exit 1"
    )
    pod = _pod(
        "flaky",
        script,
        restart_policy="OnFailure",
        volumes=[client.V1Volume(name="state", empty_dir=client.V1EmptyDirVolumeSource())],
        container={"volume_mounts": [client.V1VolumeMount(name="state", mount_path="/state")]},
    )
    core.create_namespaced_pod(namespace, pod)
    done = _finished(core, namespace, "flaky")
    status = done.status.container_statuses[0]
    assert done.status.phase == "Succeeded"
    assert status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1
    assert core.read_namespaced_pod_log("flaky", namespace) == "second run\n"
    assert core.read_namespaced_pod_log("flaky", namespace, previous=True) == "first run\n"


def test_log_options_limit_bytes_since_and_stderr(namespace: str, k8s_api: Any) -> None:
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_pod(
        namespace, _pod("chatty", "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done")
    )
    assert _finished(core, namespace, "chatty").status.phase == "Succeeded"
    full = core.read_namespaced_pod_log("chatty", namespace)
    assert sorted(full.split()) == sorted(
        [f"out{i}" for i in range(1, 6)] + [f"err{i}" for i in range(1, 6)]
    )
    assert core.read_namespaced_pod_log("chatty", namespace, limit_bytes=4) == full[:4]
    assert (
        core.read_namespaced_pod_log("chatty", namespace, tail_lines=2)
        == "\n".join(full.splitlines()[-2:]) + "\n"
    )
    assert core.read_namespaced_pod_log("chatty", namespace, since_seconds=3600) == full


def test_memory_limit_ends_in_oomkilled(namespace: str, k8s_api: Any) -> None:
    core = client.CoreV1Api(k8s_api)
    nodes = core.list_node(label_selector="shoal.dev/memory-limits=true").items
    if not nodes:
        pytest.skip("the node agent has no memory cgroup to enforce limits on this host")
    hog = "python3 -c \"b = bytearray(512 * 1024 * 1024); print('survived')\""
    pod = _pod(
        "hog",
        hog,
        container={
            "resources": client.V1ResourceRequirements(
                limits={"memory": "64Mi", "cpu": "1"}, requests={"memory": "64Mi", "cpu": "100m"}
            )
        },
    )
    core.create_namespaced_pod(namespace, pod)
    done = _finished(core, namespace, "hog")
    terminated = done.status.container_statuses[0].state.terminated
    assert done.status.phase == "Failed"
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)
