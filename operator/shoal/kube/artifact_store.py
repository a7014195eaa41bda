"""One workflow's artifact store, as the operator and the workflow's pods reach it.

The operator has a default store (`SHOAL_ARTIFACTS` and friends, or Helm values); a
Workflow may override its bucket, prefix and credentials (`spec.artifacts.store`).
Credentials are never copied anywhere: pods get them from a Secret in their own namespace
through `secretKeyRef` env, and the operator reads that Secret only when a Workflow names
one (its own operations otherwise use the operator's credentials or boto3's default chain).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from typing import Any

from shoal.api.workflow import ArtifactGC, ArtifactsSpec
from shoal.kube.api import ApiError, KubeApi
from shoal_worker.artifacts import ArtifactError, ArtifactStore, open_store
from shoal_worker.offload import OFFLOAD_BYTES
from shoal_worker.store_settings import (
    ENV_ACCESS_KEY_ID,
    ENV_SECRET_ACCESS_KEY,
    StoreSettings,
)

log = logging.getLogger("shoal.artifacts")
SECRET_ACCESS_KEY_ID = "accessKeyId"
SECRET_SECRET_ACCESS_KEY = "secretAccessKey"
GC_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ArtifactDefaults:
    """The operator's default store (None: no store, outputs stay inline)."""

    settings: StoreSettings | None = None
    credentials_secret: str | None = None
    """Name of a Secret (keys accessKeyId/secretAccessKey) that worker pods read in their
    own namespace; None: pods use boto3's default chain (IRSA, instance profile)."""


class WorkflowStore:
    """The effective store of one workflow: settings, pod env, an opened client, GC."""

    def __init__(
        self,
        api: KubeApi,
        defaults: ArtifactDefaults,
        spec: ArtifactsSpec | None,
        namespace: str,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.spec = spec or ArtifactsSpec()
        override = self.spec.store
        settings = defaults.settings
        if settings is not None and override is not None:
            settings = settings.with_overrides(bucket=override.bucket, prefix=override.prefix)
        self.settings = settings
        self.credentials_secret = (
            override.credentials_secret if override and override.credentials_secret else None
        )
        self.pod_secret = self.credentials_secret or defaults.credentials_secret
        self._store: ArtifactStore | None = None
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return self.settings is not None

    @property
    def offload_bytes(self) -> int | None:
        return (self.spec.offload_bytes or OFFLOAD_BYTES) if self.configured else None

    def pod_env(self) -> list[dict[str, Any]]:
        """What a worker pod needs to open the store (no credential values, ever)."""
        if self.settings is None:
            return []
        env: list[dict[str, Any]] = [
            {"name": name, "value": value} for name, value in self.settings.to_env().items()
        ]
        env.append({"name": "SHOAL_OFFLOAD_BYTES", "value": str(self.offload_bytes)})
        if self.pod_secret is not None:
            for name, key in (
                (ENV_ACCESS_KEY_ID, SECRET_ACCESS_KEY_ID),
                (ENV_SECRET_ACCESS_KEY, SECRET_SECRET_ACCESS_KEY),
            ):
                ref = {"name": self.pod_secret, "key": key}
                env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
        return env

    async def open(self) -> ArtifactStore:
        """The opened store (once); ArtifactError saying why it cannot be opened."""
        async with self._lock:
            if self._store is None:
                if self.settings is None:
                    raise ArtifactError(
                        "no artifact store is configured: start the operator with "
                        "SHOAL_ARTIFACTS (or the chart's artifacts.url)"
                    )
                settings = self.settings
                if self.credentials_secret is not None:
                    settings = await self._with_secret_credentials(settings)
                self._store = await asyncio.to_thread(open_store, settings)
            return self._store

    async def _with_secret_credentials(self, settings: StoreSettings) -> StoreSettings:
        name = self.credentials_secret
        path = f"/api/v1/namespaces/{self.namespace}/secrets/{name}"
        try:
            secret = await self.api.get(path)
        except ApiError as err:
            raise ArtifactError(
                f"cannot read the artifact credentials Secret {self.namespace}/{name} "
                f"(spec.artifacts.store.credentialsSecret): {err.status} {err.reason}"
            ) from None
        data = secret.get("data") or {}
        try:
            key_id = base64.b64decode(data[SECRET_ACCESS_KEY_ID]).decode()
            secret_key = base64.b64decode(data[SECRET_SECRET_ACCESS_KEY]).decode()
        except (KeyError, ValueError):
            raise ArtifactError(
                f"Secret {self.namespace}/{name} (spec.artifacts.store.credentialsSecret) "
                f"needs the keys {SECRET_ACCESS_KEY_ID} and {SECRET_SECRET_ACCESS_KEY}"
            ) from None
        return settings.replace(
            access_key_id=key_id, secret_access_key=secret_key, session_token=None
        )

    def collects_on(self, *, phase_succeeded: bool, deleted: bool) -> bool:
        """Whether this run's artifacts are due for deletion now."""
        if not self.configured:
            return False
        if self.spec.gc is ArtifactGC.ON_DELETION:
            return deleted
        if self.spec.gc is ArtifactGC.ON_SUCCESS:
            return phase_succeeded  # a failed run keeps them for debugging
        return False

    async def collect(self, prefix: str) -> str | None:
        """Delete everything under `prefix`; a message if it could not be done (bounded)."""
        delay = 1.0
        last = ""
        for attempt in range(1, GC_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                store = await self.open()
                count = await asyncio.to_thread(store.delete_prefix, prefix)
            except (ArtifactError, ValueError, OSError) as err:
                last = str(err)
                log.warning("artifact GC of %s, attempt %d: %s", prefix, attempt, last)
                if attempt < GC_ATTEMPTS:
                    await asyncio.sleep(delay)  # backoff between bounded retries
                    delay *= 4
                continue
            log.info(
                "artifact GC: deleted %d objects under %s in %.2fs",
                count,
                prefix,
                time.monotonic() - started,
            )
            return None
        return f"artifacts under {prefix} were not deleted after {GC_ATTEMPTS} attempts: {last}"
