"""Running a built resource: locally through `shoal run`, or in a cluster via KubeApi.

A local run renders the manifest to a file and runs the `shoal run` command in a child
interpreter, so it is exactly the CLI's run (same validation, executor and exit codes)
and its signal handlers never touch the caller's process. The modules that define the
workflow's `@job` functions are imported by every worker, with their folders on the path
(a script run as `__main__` by its file name: its `if __name__ == "__main__"` part does not
run again in the workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.api.workflow import WorkflowPhase
from shoal.core.templates import TemplatesNeeded
from shoal.sdk.refs import SdkError
from shoal.sdk.render import Buildable, ResourceModel, resource_of, to_dict, to_yaml, validate

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = ["LocalResult", "job_modules", "run_local", "submit", "submit_async"]


@dataclass(frozen=True, slots=True)
class LocalResult:
    """How a local run ended: what `shoal run -o json` printed, and where its logs are."""

    phase: str
    exit_code: int
    status: dict[str, Any] = field(default_factory=dict)
    """Phase, progress and per node its phase, attempts, outputs (`run_summary`)."""
    workdir: Path | None = None

    @property
    def succeeded(self) -> bool:
        return self.phase == WorkflowPhase.SUCCEEDED.value


def job_modules(obj: Buildable | ResourceModel) -> tuple[list[str], list[Path]]:
    """Modules defining the builder's job functions, and the folders to import them from."""
    modules: list[str] = []
    roots: list[Path] = []
    for func in getattr(obj, "job_functions", []):
        name = getattr(func, "__module__", "")
        file = getattr(sys.modules.get(name), "__file__", None)
        if not name or name.startswith("shoal_worker") or file is None:
            continue
        path = Path(file).resolve()
        if name == "__main__":  # a script with its jobs: workers import it by file name
            name = path.stem
        depth = name.count(".") + (1 if path.name == "__init__.py" else 0)
        root = path.parents[depth]
        if name not in modules:
            modules.append(name)
        if root not in roots:
            roots.append(root)
    return modules, roots


def run_local(
    obj: Buildable | ResourceModel,
    params: dict[str, Any] | None = None,
    *,
    imports: list[str] | None = None,
    workdir: Path | None = None,
    quiet: bool = True,
    templates: Sequence[Any] = (),
) -> LocalResult:
    """Run with `shoal run` on this machine; InvalidWorkflow before anything starts.
    `templates` (builders or models) go into the manifest file before the workflow."""
    res = resource_of(obj)
    validate(res, params, templates)
    modules, roots = job_modules(obj)
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="shoal-sdk-"))
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.yaml"
    documents = [to_yaml(resource_of(t)) for t in templates] + [to_yaml(res)]
    manifest.write_text("---\n".join(documents), encoding="utf-8")
    argv = [sys.executable, "-m", "shoal.cli.main", "run", str(manifest), "--plain"]
    argv += ["-o", "json", "--workdir", str(folder / "run")]
    for module in [*modules, *(imports or [])]:
        argv += ["--import", module]
    for key, value in (params or {}).items():
        argv += ["-p", f"{key}={json.dumps(value)}"]
    if quiet:
        argv.append("-q")
    env = dict(os.environ)
    paths = [str(r) for r in roots] + [p for p in [env.get("PYTHONPATH")] if p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    done = subprocess.run(argv, cwd=folder, env=env, stdout=subprocess.PIPE, text=True, check=False)
    try:
        status = json.loads(done.stdout)
    except json.JSONDecodeError:
        status = {}
    phase = status.get("phase", "Error") if isinstance(status, dict) else "Error"
    return LocalResult(str(phase), done.returncode, status, folder / "run")


def submit(
    obj: Buildable | ResourceModel, params: dict[str, Any] | None = None, **options: Any
) -> dict[str, Any]:
    """`submit_async` for scripts: create the resource and (with `watch=True`) wait."""
    return asyncio.run(submit_async(obj, params, **options))


def _path(res: ResourceModel, namespace: str) -> str:
    if res.kind == "ClusterWorkflowTemplate":
        return "/apis/shoal.dev/v1alpha1/clusterworkflowtemplates"
    plurals = {"CronWorkflow": "cronworkflows", "WorkflowTemplate": "workflowtemplates"}
    plural = plurals.get(res.kind, "workflows")
    return f"/apis/shoal.dev/v1alpha1/namespaces/{namespace}/{plural}"


async def submit_async(
    obj: Buildable | ResourceModel,
    params: dict[str, Any] | None = None,
    *,
    namespace: str | None = None,
    watch: bool = False,
    watch_seconds: float | None = None,
    poll_seconds: float = 1.0,
    kubeconfig: str | None = None,
    context: str | None = None,
    api: KubeApi | None = None,
) -> dict[str, Any]:
    """Validate, then create the Workflow (or CronWorkflow); returns the created object,
    or with `watch=True` the Workflow once finished (`shoal submit --watch`).

    `params` are merged into spec.parameters, so the object records what it ran with.
    """
    res = resource_of(obj)
    with contextlib.suppress(TemplatesNeeded):  # the cluster resolves them (docs/templates.md)
        validate(res, params)
    body = to_dict(res)
    meta = body.setdefault("metadata", {})
    if not meta.get("name") and not meta.get("generateName"):
        raise SdkError("set a name (or generate_name) before submitting")
    declared = meta.get("namespace")
    if declared and namespace and declared != namespace:
        raise SdkError(f"the resource's namespace {declared!r} differs from {namespace!r}")
    meta["namespace"] = ns = declared or namespace or "default"
    if res.kind == "ClusterWorkflowTemplate":
        del meta["namespace"]
    if params:
        body["spec"]["parameters"] = {**body["spec"].get("parameters", {}), **params}
    if api is None:
        from shoal.kube.api import KubeApi  # the cluster client is an operator extra

        client = KubeApi.connect(kubeconfig, context)
        try:
            return await _create(client, res, ns, body, watch, watch_seconds, poll_seconds)
        finally:
            await client.close()
    return await _create(api, res, ns, body, watch, watch_seconds, poll_seconds)


async def _create(
    api: KubeApi,
    res: ResourceModel,
    ns: str,
    body: dict[str, Any],
    watch: bool,
    watch_seconds: float | None,
    poll_seconds: float,
) -> dict[str, Any]:
    created = await api.request("POST", _path(res, ns), body=body)
    if not watch or res.kind != "Workflow":
        return created
    name = created["metadata"]["name"]
    deadline = None if watch_seconds is None else time.monotonic() + watch_seconds
    current = created
    while True:
        phase = (current.get("status") or {}).get("phase")
        if phase in {p.value for p in WorkflowPhase if p.finished}:
            return current
        if deadline is not None and time.monotonic() >= deadline:
            still = phase or "Pending"
            raise TimeoutError(f"workflow {name!r} still {still} after {watch_seconds}s")
        await asyncio.sleep(poll_seconds)
        current = await api.get(f"{_path(res, ns)}/{name}")
