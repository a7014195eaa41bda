"""Exceptions shared by the SDK and the entrypoint."""

from __future__ import annotations


class JobFailed(Exception):
    """Raised (usually via ``ctx.fail``) to end a job as failed, without a traceback.

    ``exit_code`` (1..125) becomes the worker's exit status; 1 unless told otherwise.
    """

    def __init__(self, message: str, exit_code: int = 1) -> None:
        if type(exit_code) is not int or not 1 <= exit_code <= 125:
            raise ValueError(f"JobFailed exit_code must be an integer 1..125, got {exit_code!r}")
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Terminated(BaseException):
    """Raised inside the job when the worker receives SIGTERM (pod deletion, deadline).

    A BaseException like KeyboardInterrupt, so ``except Exception`` in job code does not
    swallow it; ``finally`` blocks and context managers still run.
    """

    def __init__(self, signum: int = 15) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


class UsageError(Exception):
    """The worker was started wrongly: unknown job, bad arguments, bad JSON (exit 2)."""


class OutputError(TypeError):
    """An output that cannot be carried: empty key or a value JSON cannot encode."""
