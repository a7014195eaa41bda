"""shoal_worker: the SDK for shoal jobs and the ``shoal-worker`` entrypoint.

Standard library only, and importing it never imports the control plane (``shoal``) or
its dependencies: worker images stay slim and start fast.

    from shoal_worker import Context, job

    @job("greet")
    def greet(ctx: Context, name: str) -> dict[str, str]:
        ctx.log("greeting", name=name)
        return {"greeting": f"hello {name}"}
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .context import Context
    from .errors import JobFailed, OutputError, Terminated, UsageError
    from .protocol import MARKER, PROTOCOL_VERSION, TOKEN_ENV
    from .registry import JobSpec, job, register

_HOMES = {
    "MARKER": "protocol",
    "PROTOCOL_VERSION": "protocol",
    "TOKEN_ENV": "protocol",
    "Context": "context",
    "JobFailed": "errors",
    "OutputError": "errors",
    "Terminated": "errors",
    "UsageError": "errors",
    "JobSpec": "registry",
    "job": "registry",
    "register": "registry",
}
"""Public name -> submodule. Imported on first use, so the control plane, which needs
only ``protocol`` and ``offload``, never loads the job registry, emit or the store."""

__all__ = [
    "MARKER",
    "PROTOCOL_VERSION",
    "TOKEN_ENV",
    "Context",
    "JobFailed",
    "JobSpec",
    "OutputError",
    "Terminated",
    "UsageError",
    "job",
    "register",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shoal_worker' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
