"""Refuse a local run whose job names the imported modules do not register, before
anything starts.

Without this check every item of a fan-out starts a worker that fails with the same
usage error. With `--import` the registry is known up front: one `shoal-worker list`
in the run's environment names the jobs, so a misspelt name costs one message, with
the closest known name, and no child runs.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from shoal.core.compiled import CompiledWorkflow
from shoal.local.process import import_env

__all__ = ["LIST_TIMEOUT_SECONDS", "job_name_problems", "known_jobs"]

LIST_TIMEOUT_SECONDS = 60.0
"""Importing the job modules may be slow (heavy libraries), never endless."""


def _named_jobs(wf: CompiledWorkflow) -> dict[str, str]:
    """Node → registered job name, for the nodes that name one (not `module:function`)."""
    return {
        name: node.spec.job
        for name, node in wf.nodes.items()
        if node.spec.job and ":" not in node.spec.job and "${{" not in node.spec.job
    }


def known_jobs(env: Mapping[str, str], cwd: Path) -> tuple[set[str] | None, str]:
    """The registered job names (None when the modules cannot be imported) and stderr."""
    argv = [sys.executable, "-m", "shoal_worker.runner", "list"]
    try:
        proc = subprocess.run(
            argv,
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=LIST_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, str(err)
    if proc.returncode != 0:
        return None, proc.stderr.strip()
    return set(proc.stdout.split()), proc.stderr.strip()


def job_name_problems(
    wf: CompiledWorkflow,
    *,
    imports: list[str],
    extra_pythonpath: list[Path],
    cwd: Path,
    environ: Mapping[str, str],
) -> list[str]:
    """One message per node whose job is not registered; empty when all are (or when
    no module is imported: then the registry is only known to the workers)."""
    named = _named_jobs(wf)
    if not imports or not named:
        return []
    known, stderr = known_jobs(import_env(environ, extra_pythonpath, imports), cwd)
    if known is None:
        reason = stderr.splitlines()[-1] if stderr else "the job modules could not be listed"
        return [f"--import: {reason.removeprefix('shoal-worker: error: ')}"]
    problems = []
    for node, job in named.items():
        if job in known:
            continue
        close = difflib.get_close_matches(job, sorted(known), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(
            f"node {node!r}: unknown job {job!r}{hint} Known jobs: {', '.join(sorted(known))}"
        )
    return problems
