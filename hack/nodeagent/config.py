"""The node agent's configuration file (JSON, written by tests/support)."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ImageRule:
    """What running an image means on this host: its ENTRYPOINT/CMD, env, workdir, user."""

    match: str
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: int | None = None
    # Set for images that "do not exist": their pods stay Pending in ImagePullBackOff.
    pull_error: str | None = None
    # Host directories that are part of the "image" (its interpreter, its venv). A
    # non-root container gets them reachable even below a directory only root may
    # enter, as they would be in a real image (launcher.py explains how).
    image_paths: tuple[str, ...] = ()
    # The image's own accounts (name, uid, gid), as its /etc/passwd and /etc/group hold
    # them (a Dockerfile's useradd): added to the host's for the container.
    users: tuple[tuple[str, int, int], ...] = ()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ImageRule:
        return cls(
            match=str(raw["match"]),
            entrypoint=raw.get("entrypoint"),
            cmd=raw.get("cmd"),
            env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
            working_dir=raw.get("workingDir"),
            user=raw.get("user"),
            pull_error=raw.get("pullError"),
            image_paths=tuple(str(p) for p in raw.get("imagePaths") or ()),
            users=tuple(
                (str(u["name"]), int(u["uid"]), int(u["gid"])) for u in raw.get("users") or ()
            ),
        )

    def matches(self, image: str) -> bool:
        untagged = image.split("@", 1)[0]
        if ":" in untagged.rsplit("/", 1)[-1]:
            untagged = untagged.rsplit(":", 1)[0]
        return fnmatch.fnmatchcase(image, self.match) or fnmatch.fnmatchcase(untagged, self.match)


@dataclass(frozen=True)
class NodeConfig:
    name: str
    port: int
    client_cert: str
    client_key: str
    capacity: dict[str, str]


@dataclass(frozen=True)
class AgentConfig:
    apiserver: str
    ca: str
    serving_cert: str
    serving_key: str
    state_dir: Path
    nodes: list[NodeConfig]
    images: list[ImageRule]
    path: str
    # Restart back-off for crashing containers: the kubelet's is 10s doubling to 300s.
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    mount_namespaces: bool = True

    def image_rule(self, image: str) -> ImageRule:
        for rule in self.images:
            if rule.matches(image):
                return rule
        return ImageRule(match="*")

    @property
    def apiserver_host_port(self) -> tuple[str, str]:
        hostport = self.apiserver.split("://", 1)[-1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        return host, port


def load(path: Path) -> AgentConfig:
    raw = json.loads(path.read_text())
    return AgentConfig(
        apiserver=raw["apiserver"],
        ca=raw["ca"],
        serving_cert=raw["serving_cert"],
        serving_key=raw["serving_key"],
        state_dir=Path(raw["state_dir"]),
        nodes=[
            NodeConfig(
                name=n["name"],
                port=int(n["port"]),
                client_cert=n["client_cert"],
                client_key=n["client_key"],
                capacity={str(k): str(v) for k, v in n.get("capacity", {}).items()},
            )
            for n in raw["nodes"]
        ],
        images=[ImageRule.from_dict(r) for r in raw.get("images", [])],
        path=raw.get("path", "/usr/local/bin:/usr/bin:/bin"),
        backoff_initial=float(raw.get("backoff_initial", 10.0)),
        backoff_max=float(raw.get("backoff_max", 300.0)),
        mount_namespaces=bool(raw.get("mount_namespaces", True)),
    )
