"""The artifact store and the output offloader a worker process gets from its environment.

Shared by `shoal-worker run` (a job's outputs and arguments) and `shoal-worker exec`
(outputs read from files), so both read `SHOAL_ARTIFACTS` and `SHOAL_OFFLOAD_BYTES` alike.
"""

from __future__ import annotations

from .errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from .artifacts import ArtifactStore
    from .offload import Offloader

__all__ = ["lazy_store", "offloader"]


def lazy_store(env: Mapping[str, str]) -> Callable[[], ArtifactStore] | None:
    """The configured store, opened on first use; None when none is configured.

    The artifact modules are imported only when a store is configured: a worker without
    one starts as fast as before. Bad settings are a usage error: the pod was started
    wrongly, and retrying will not help.
    """
    if not env.get("SHOAL_ARTIFACTS", "").strip():
        return None
    from .artifacts import open_store
    from .store_settings import StoreSettings

    try:
        settings = StoreSettings.from_env(env)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if settings is None:
        return None
    opened: list[ArtifactStore] = []

    def store() -> ArtifactStore:
        if not opened:
            opened.append(open_store(settings))
        return opened[0]

    return store


def offloader(
    env: Mapping[str, str], store: Callable[[], ArtifactStore] | None
) -> Offloader | None:
    if store is None:
        return None  # no store: outputs stay inline, as large as they are
    from .offload import OFFLOAD_BYTES, Offloader

    raw = env.get("SHOAL_OFFLOAD_BYTES", "").strip()
    if raw and not raw.isdigit():
        raise UsageError(f"SHOAL_OFFLOAD_BYTES must be a number of bytes, got {raw!r}")
    return Offloader(store, env, int(raw) if raw else OFFLOAD_BYTES)
