"""shoal_worker: the SDK for shoal jobs and the ``shoal-worker`` entrypoint.

Standard library only, and importing it never imports the control plane (``shoal``) or
its dependencies: worker images stay slim and start fast.

    from shoal_worker import Context, job

    @job("greet")
    def greet(ctx: Context, name: str) -> dict[str, str]:
        ctx.log("greeting", name=name)
        return {"greeting": f"hello {name}"}
"""

from .context import Context
from .errors import JobFailed, OutputError, Terminated, UsageError
from .protocol import MARKER, PROTOCOL_VERSION, TOKEN_ENV
from .registry import JobSpec, job, register

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
