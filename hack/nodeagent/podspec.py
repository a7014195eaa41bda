"""Turning a pod spec into what a process needs: env, argv, volumes on disk.

Secrets and ConfigMaps are read with the node's own credentials, so the API server's
Node authorizer decides, as for a real kubelet, that only pods bound here may see them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import AgentConfig, ImageRule
from .kube import ApiError, Kube

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)|\$\$")


class ConfigError(Exception):
    """The pod refers to something missing; the kubelet retries (CreateContainerConfigError)."""


class VolumeError(Exception):
    """A volume cannot be set up yet or at all (the pod stays ContainerCreating)."""


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names replaced, $$ escapes, unknown kept."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR.sub(sub, value)


@dataclass
class Objects:
    """Per-pod cache of the Secrets/ConfigMaps a pod references."""

    kube: Kube
    namespace: str
    _cache: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        key = (kind, name)
        if key not in self._cache:
            try:
                self._cache[key] = await self.kube.get(
                    f"/api/v1/namespaces/{self.namespace}/{kind}/{name}"
                )
            except ApiError as err:
                if err.status == 403:
                    self._cache[key] = None
                else:
                    raise
        return self._cache[key]

    async def data(self, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        """Decoded data of a secret/configmap; None if it is optional and missing."""
        obj = await self.get(kind, name)
        if obj is None:
            if optional:
                return None
            singular = "secret" if kind == "secrets" else "configmap"
            raise ConfigError(f'{singular} "{name}" not found')
        out: dict[str, bytes] = {}
        if kind == "secrets":
            for key, value in (obj.get("data") or {}).items():
                out[key] = base64.b64decode(value)
            for key, value in (obj.get("stringData") or {}).items():
                out[key] = value.encode()
        else:
            for key, value in (obj.get("data") or {}).items():
                out[key] = value.encode()
            for key, value in (obj.get("binaryData") or {}).items():
                out[key] = base64.b64decode(value)
        return out


def field_ref(pod: dict[str, Any], path: str) -> str:
    meta = pod["metadata"]
    status = pod.get("status") or {}
    spec = pod["spec"]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP", "127.0.0.1"),
        "status.hostIPs": "127.0.0.1",
        "status.podIP": status.get("podIP", "127.0.0.1"),
        "status.podIPs": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path])
    if path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items()))
    if path == "metadata.annotations":
        items = sorted((meta.get("annotations") or {}).items())
        return "\n".join(f'{k}="{v}"' for k, v in items)
    raise ConfigError(f"unsupported fieldRef {path!r}")


_SUFFIX = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "m": 1e-3, "u": 1e-6, "n": 1e-9,
}  # fmt: skip


def quantity(value: str | int | float) -> float:
    """A resource quantity ("500m", "128Mi", "1e3") as a number."""
    text = str(value).strip()
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if text.endswith(suffix) and text[: -len(suffix)]:
            return float(text[: -len(suffix)]) * _SUFFIX[suffix]
    return float(text)


def resource_ref(pod: dict[str, Any], container: dict[str, Any], ref: dict[str, Any]) -> str:
    name = ref.get("containerName")
    if name:
        found = [c for c in pod["spec"]["containers"] if c["name"] == name]
        container = found[0] if found else container
    kind, _, resource = ref["resource"].partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(resource)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(resource)
    if raw is None:  # no limit: the node's allocatable, as the kubelet reports
        raw = {"cpu": "4", "memory": "8Gi"}.get(resource, "0")
    divisor = quantity(ref.get("divisor") or "1")
    return str(math.ceil(quantity(raw) / divisor))


async def container_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    objects: Objects,
    rule: ImageRule,
    config: AgentConfig,
) -> dict[str, str]:
    """The process environment, in the kubelet's precedence order."""
    host, port = config.apiserver_host_port
    env: dict[str, str] = {
        "PATH": config.path,
        "HOSTNAME": pod["metadata"]["name"],
        "HOME": "/root",
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "KUBERNETES_SERVICE_PORT_HTTPS": port,
        "KUBERNETES_PORT": f"tcp://{host}:{port}",
    }
    env.update(rule.env)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = source.get(key)
            if ref:
                data = await objects.data(kind, ref["name"], bool(ref.get("optional")))
                for name, value in (data or {}).items():
                    env[prefix + name] = value.decode(errors="replace")
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_ref(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            env[name] = resource_ref(pod, container, source["resourceFieldRef"])
        else:
            for kind, key in (("configmaps", "configMapKeyRef"), ("secrets", "secretKeyRef")):
                ref = source.get(key)
                if not ref:
                    continue
                optional = bool(ref.get("optional"))
                data = await objects.data(kind, ref["name"], optional)
                if data is None:
                    break
                if ref["key"] not in data:
                    if optional:
                        break
                    raise ConfigError(f"couldn't find key {ref['key']} in {kind} {ref['name']}")
                env[name] = data[ref["key"]].decode(errors="replace")
    return env


def container_argv(container: dict[str, Any], rule: ImageRule, env: dict[str, str]) -> list[str]:
    """ENTRYPOINT/CMD overridden by command/args, as a container runtime combines them."""
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(rule.entrypoint or []) + list(args if args is not None else (rule.cmd or []))
    if not argv:
        raise ConfigError(
            f"image {container.get('image')!r} has no entrypoint configured on this node "
            "and the container sets no command"
        )
    return [expand(part, env) for part in argv]


# -- volumes -----------------------------------------------------------------------


def _write_files(directory: Path, files: dict[str, bytes], mode: int) -> None:
    """Replace the contents of ``directory`` with ``files`` (keys may contain slashes)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    for rel, content in files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)


def _select(data: dict[str, bytes], items: list[dict[str, Any]] | None) -> dict[str, bytes]:
    if not items:
        return dict(data)
    out = {}
    for item in items:
        if item["key"] not in data:
            raise VolumeError(f"key {item['key']} not found")
        out[item["path"]] = data[item["key"]]
    return out


async def _projected_sources(
    pod: dict[str, Any], objects: Objects, sources: list[dict[str, Any]]
) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for source in sources:
        if "serviceAccountToken" in source:
            sat = source["serviceAccountToken"]
            files[sat["path"]] = (await service_account_token(pod, objects.kube, sat)).encode()
        for kind, key, name_key in (
            ("configmaps", "configMap", "name"),
            ("secrets", "secret", "name"),
        ):
            if key in source:
                ref = source[key]
                data = await objects.data(kind, ref[name_key], bool(ref.get("optional")))
                files.update(_select(data or {}, ref.get("items")))
        if "downwardAPI" in source:
            files.update(_downward(pod, source["downwardAPI"].get("items") or []))
    return files


def _downward(pod: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, bytes]:
    files = {}
    for item in items:
        if "fieldRef" in item:
            files[item["path"]] = field_ref(pod, item["fieldRef"]["fieldPath"]).encode()
        elif "resourceFieldRef" in item:
            containers = pod["spec"]["containers"]
            files[item["path"]] = resource_ref(
                pod, containers[0], item["resourceFieldRef"]
            ).encode()
    return files


async def service_account_token(pod: dict[str, Any], kube: Kube, source: dict[str, Any]) -> str:
    """A token from the API server's TokenRequest, bound to this pod (as the kubelet asks)."""
    meta = pod["metadata"]
    sa = pod["spec"].get("serviceAccountName") or "default"
    spec: dict[str, Any] = {
        "expirationSeconds": int(source.get("expirationSeconds", 3607)),
        "boundObjectRef": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }
    if source.get("audience"):
        spec["audiences"] = [source["audience"]]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    try:
        result = await kube.request(
            "POST", f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token", body=body
        )
    except ApiError as err:
        raise VolumeError(f"failed to fetch token for service account {sa}: {err}") from err
    return str(result["status"]["token"])


def _host_path(source: dict[str, Any]) -> Path:
    host = Path(source["path"])
    kind = source.get("type", "")
    if kind == "DirectoryOrCreate":
        host.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not host.exists():
        host.parent.mkdir(parents=True, exist_ok=True)
        host.touch()
    elif kind and not host.exists():
        raise VolumeError(f"hostPath {host} does not exist")
    return host


async def prepare_volumes(pod: dict[str, Any], objects: Objects, root: Path) -> dict[str, Path]:
    """Materialise every volume under ``root``; returns volume name -> host path."""
    paths: dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        name = volume["name"]
        target = root / name
        if "emptyDir" in volume:
            target.mkdir(parents=True, exist_ok=True)
            target.chmod(0o777)  # as the kubelet does, so any runAsUser can write
        elif "hostPath" in volume:
            paths[name] = _host_path(volume["hostPath"])
            continue
        elif "secret" in volume or "configMap" in volume:
            kind, key = ("secrets", "secret") if "secret" in volume else ("configmaps", "configMap")
            src = volume[key]
            ref = src.get("secretName") if key == "secret" else src.get("name")
            data = await objects.data(kind, str(ref), bool(src.get("optional")))
            _write_files(
                target, _select(data or {}, src.get("items")), src.get("defaultMode", 0o644)
            )
        elif "projected" in volume:
            src = volume["projected"]
            files = await _projected_sources(pod, objects, src.get("sources") or [])
            _write_files(target, files, src.get("defaultMode", 0o644))
        elif "downwardAPI" in volume:
            src = volume["downwardAPI"]
            files = _downward(pod, src.get("items") or [])
            _write_files(target, files, src.get("defaultMode", 0o644))
        else:
            kinds = sorted(set(volume) - {"name"})
            raise VolumeError(f"volume {name}: type {kinds} is not supported by the node agent")
        paths[name] = target
    return paths


def mounts_for(
    container: dict[str, Any], volumes: dict[str, Path], termination_log: Path
) -> list[dict[str, Any]]:
    """Bind mounts for the launcher: each volumeMount, then the termination-message file."""
    mounts = []
    for mount in container.get("volumeMounts") or []:
        source = volumes.get(mount["name"])
        if source is None:
            raise ConfigError(f"volume {mount['name']!r} not found")
        sub = mount.get("subPath")
        if sub:
            source = source / sub
            if not source.exists():
                source.mkdir(parents=True, exist_ok=True)
        mounts.append(
            {
                "source": str(source),
                "target": mount["mountPath"],
                "readOnly": bool(mount.get("readOnly")),
                "dir": source.is_dir(),
            }
        )
    path = container.get("terminationMessagePath") or "/dev/termination-log"
    mounts.append({"source": str(termination_log), "target": path, "readOnly": False, "dir": False})
    return mounts


def account_files(rule: ImageRule, run_dir: Path) -> list[dict[str, Any]]:
    """The image's accounts: the host's /etc/passwd and /etc/group plus the rule's users,
    mounted read-only over them (programs look their uid up: Python's getpass, say)."""
    if not rule.users:
        return []
    shell = "/usr/sbin/nologin"
    entries = {
        "passwd": [f"{name}:x:{uid}:{gid}::/nonexistent:{shell}" for name, uid, gid in rule.users],
        "group": [f"{name}:x:{gid}:" for name, _, gid in rule.users],
    }
    mounts = []
    for name, lines in entries.items():
        host = Path("/etc") / name
        existing = host.read_text().splitlines() if host.exists() else []
        copy = run_dir / name
        copy.write_text("\n".join([*existing, *lines]) + "\n")
        copy.chmod(0o644)
        mounts.append({"source": str(copy), "target": str(host), "readOnly": True, "dir": False})
    return mounts


def write_spec(path: Path, spec: dict[str, Any]) -> None:
    """The launcher's instructions; holds env values, so only root may read it."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(spec, out)
