"""`shoal server` on a real control plane: list latency, live-stream fan-out, the UI.

Starts the test control plane (`tests/support`), applies `crds/`, creates N Workflows
(default 1,000) in one namespace and a ServiceAccount that may read them, starts
`shoal server` (client auth mode: every request carries that account's token), and
measures:

  list      `GET /api/v1/workflows?namespace=NS&limit=L` (L = 500, the API's maximum
            page, and 100, its default): the HTTP round trip on loopback, which bounds
            the server's time from above (p50/p99 over --samples requests; target p99
            <= 300 ms), against the peer: the same page listed directly from the API
            server with the same token (what `kubectl get workflows` asks for).
  stream    --clients (default 50) SSE clients on `/api/v1/stream/workflows`: the API
            server's own count of Workflow watches it serves
            (`apiserver_longrunning_requests{resource="workflows",verb="WATCH"}`) with no
            client, 1 and all of them (target: constant), and the delay from creating a
            Workflow to every client having its event (p50/p99 over clients), against
            the peer: one direct API watch's delay for the same creation.
  ui        `bench/ui_browser.py`'s time to interactive for a 10,000-item fan-out, if
            that module exists (written with the web UI), else "not measured".

The machine's load (1-minute average, busy CPU over the run) is printed with the
figures: this is a shared 2-core machine, so ratios to same-run peers matter more than
absolute values. Every wait has a deadline; everything started is stopped on exit.

    .venv/bin/python bench/server.py [--quick] [--kubeconfig K] [--workflows 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from cluster import control_plane  # noqa: E402
from cluster_parts import (  # noqa: E402
    BenchError,
    create_namespace,
    machine_cpu_seconds,
    percentile,
)

from shoal.kube.api import KubeApi, workflows_path  # noqa: E402

LIST_TARGET_MS = 300.0
STREAM = "/api/v1/stream/workflows"


def workflow(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name, "labels": {"bench": "server"}},
        "spec": {"nodes": [{"name": "hello", "image": "busybox", "command": ["true"]}]},
    }


async def create_workflows(api: KubeApi, namespace: str, count: int) -> None:
    gate = asyncio.Semaphore(20)

    async def one(index: int) -> None:
        async with gate:
            await api.create(workflows_path(namespace), workflow(f"wf-{index:05d}"))

    await asyncio.gather(*(one(i) for i in range(count)))


async def reader_token(api: KubeApi, namespace: str) -> str:
    """A ServiceAccount that may get/list/watch Workflows in `namespace`; its token."""
    name = "bench-reader"
    await api.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}
    )
    rules = [
        {"apiGroups": ["shoal.dev"], "resources": ["workflows"], "verbs": ["get", "list", "watch"]}
    ]
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    await api.create(f"{rbac}/roles", {"metadata": {"name": name}, "rules": rules})
    binding = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    await api.create(f"{rbac}/rolebindings", binding)
    answer = await api.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        body={"spec": {"expirationSeconds": 3600}},
    )
    return str(answer["status"]["token"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def shoal_server(kubeconfig: Path, log: Path) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "shoal.cli.main", "server", "--port", str(port)]
    argv += ["--kubeconfig", str(kubeconfig), "--log-level", "WARNING"]
    with log.open("ab") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise BenchError(f"shoal server exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError("shoal server did not answer /healthz within 60 s")
            time.sleep(0.2)  # polling a starting process: nothing to wait on
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def timed(client: httpx.AsyncClient, url: str, samples: int, token: str) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    took = []
    for _ in range(samples):
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        took.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise BenchError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return took


async def list_latency(
    url: str, host: str, verify: Any, namespace: str, token: str, samples: int
) -> list[str]:
    lines = []
    async with (
        httpx.AsyncClient(timeout=60) as ours,
        httpx.AsyncClient(base_url=host, verify=verify, timeout=60) as peer,
    ):
        for limit in (500, 100):
            await timed(
                ours, f"{url}/api/v1/workflows?namespace={namespace}&limit={limit}", 3, token
            )
            server = await timed(
                ours, f"{url}/api/v1/workflows?namespace={namespace}&limit={limit}", samples, token
            )
            direct = await timed(peer, f"{workflows_path(namespace)}?limit={limit}", samples, token)
            p50, p99 = percentile(server, 50) * 1000, percentile(server, 99) * 1000
            d50, d99 = percentile(direct, 50) * 1000, percentile(direct, 99) * 1000
            verdict = "ok" if p99 <= LIST_TARGET_MS else "MISS"
            lines.append(
                f"list limit={limit:<4} shoal server p50 {p50:7.1f} ms  p99 {p99:7.1f} ms "
                f"[{verdict}, target p99 <= {LIST_TARGET_MS:.0f} ms] | API server direct p50 "
                f"{d50:6.1f} ms p99 {d99:6.1f} ms | ratio p50 {p50 / d50:4.1f}x "
                f"p99 {p99 / d99:4.1f}x"
            )
    return lines


async def watches(api: KubeApi) -> int:
    """Workflow watches the API server serves now, by its own metric."""
    text = await api.text("/metrics")
    total = 0.0
    for line in text.splitlines():
        metric = line.startswith("apiserver_longrunning_requests{")
        if metric and 'resource="workflows"' in line and 'verb="WATCH"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def first_watch(api: KubeApi, before: int) -> int:
    """The watch count once the shared watch is open (it opens just after its listing;
    `before` counts the others, e.g. the garbage collector's)."""
    deadline = time.monotonic() + 30
    while True:  # a metric to poll: the API server has no event for it
        count = await watches(api)
        if count > before or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.1)


class Client:
    """One SSE client: when it saw `synced`, and when it saw each Workflow name."""

    def __init__(self) -> None:
        self.synced = asyncio.Event()
        self.seen: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def run(self, client: httpx.AsyncClient, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise BenchError(f"stream: {response.status_code}")
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    if kind == "synced":
                        self.synced.set()
                    elif kind == "workflow":
                        name = json.loads(line[6:])["object"]["metadata"]["name"]
                        self.seen.setdefault(name, time.perf_counter())
                        self.changed.set()


async def until(event: asyncio.Event, what: str, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        raise BenchError(f"timed out after {seconds:.0f}s waiting for {what}") from None


async def peer_delay(admin: KubeApi, namespace: str, name: str, created: asyncio.Event) -> float:
    """A direct API watch's delay from the create request to its ADDED event."""
    from shoal.kube.listwatch import watch_events

    started = 0.0
    async for kind, obj in watch_events(admin, workflows_path(namespace), time.monotonic() + 60):
        if kind == "SYNCED":
            created.set()
            started = time.perf_counter()
            await admin.create(workflows_path(namespace), workflow(name))
        elif kind == "ADDED" and obj["metadata"]["name"] == name and started:
            return time.perf_counter() - started
    raise BenchError("the peer watch never saw its Workflow")


async def fan_out(url: str, admin: KubeApi, namespace: str, token: str, clients: int) -> list[str]:
    # The garbage collector starts watching a new resource on its own schedule: let it,
    # so that its watch is not counted as ours.
    before = await first_watch(admin, 0)
    stream_url = f"{url}{STREAM}?namespace={namespace}&seconds=300"
    limits = httpx.Limits(max_connections=clients + 5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=None), limits=limits) as http:
        readers = [Client() for _ in range(clients)]
        tasks = [asyncio.create_task(r.run(http, stream_url, token)) for r in readers]
        try:
            await until(readers[0].synced, "the first client's snapshot", 120)
            with_one = await first_watch(admin, before)
            for reader in readers:
                await until(reader.synced, "every client's snapshot", 120)
            with_all = await watches(admin)
            name = f"live-{secrets.token_hex(3)}"
            started = time.perf_counter()
            await admin.create(workflows_path(namespace), workflow(name))
            for reader in readers:
                while name not in reader.seen:
                    reader.changed.clear()
                    await until(reader.changed, "every client to see the new Workflow", 60)
            delays = [reader.seen[name] - started for reader in readers]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    peer = await peer_delay(admin, namespace, f"peer-{secrets.token_hex(3)}", asyncio.Event())
    constant = "ok" if with_one == with_all else "MISS"
    p50, p99 = percentile(delays, 50) * 1000, percentile(delays, 99) * 1000
    return [
        f"stream: Workflow watches on the API server: {before} without the server's (the "
        f"controllers'), {with_one} with 1 client, {with_all} with {clients} clients "
        f"[{constant}, target constant]",
        f"stream delivery to {clients} clients p50 {p50:6.1f} ms p99 {p99:6.1f} ms | direct API "
        f"watch {peer * 1000:6.1f} ms | ratio p50 {p50 / (peer * 1000):4.1f}x",
    ]


def ui_time_to_interactive(url: str, token: str, namespace: str) -> str:
    """`bench/ui_browser.py`'s figure, if that module exists (it is optional here)."""
    try:
        module = importlib.import_module("ui_browser")
    except ImportError:
        return "ui time to interactive (10,000-item fan-out): not measured (no bench/ui_browser.py)"
    function = next(
        (
            getattr(module, n)
            for n in ("time_to_interactive", "measure_time_to_interactive", "measure")
            if callable(getattr(module, n, None))
        ),
        None,
    )
    if function is None:
        return "ui time to interactive: not measured (bench/ui_browser.py has no such function)"
    offered = {
        "url": url,
        "server_url": url,
        "base_url": url,
        "token": token,
        "namespace": namespace,
    }
    kwargs: dict[str, Any] = {}
    for param in inspect.signature(function).parameters.values():
        if param.name in offered:
            kwargs[param.name] = offered[param.name]
        elif param.default is inspect.Parameter.empty and param.kind not in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            return f"ui time to interactive: not measured (cannot supply {param.name!r})"
    result = function(**kwargs)
    if isinstance(result, int | float):
        verdict = "ok" if result <= 2.0 else "MISS"
        what = "ui time to interactive (10,000-item fan-out)"
        return f"{what}: {result:.2f} s [{verdict}, target <= 2 s]"
    return f"ui time to interactive: {result}"


async def run(args: argparse.Namespace, kubeconfig: Path, logs: Path) -> list[str]:
    admin = KubeApi.connect(str(kubeconfig))
    namespace = f"srv-bench-{secrets.token_hex(3)}"
    try:
        await create_namespace(admin, namespace)
        started = time.perf_counter()
        await create_workflows(admin, namespace, args.workflows)
        made = time.perf_counter() - started
        token = await reader_token(admin, namespace)
        await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
        lines = [f"{args.workflows} Workflows created in {made:.1f} s"]
        with shoal_server(kubeconfig, logs / "server.log") as url:
            creds = admin.creds
            lines += await list_latency(
                url, creds.host, creds.ssl_context, namespace, token, args.samples
            )
            lines += await fan_out(url, admin, namespace, token, args.clients)
            lines.append(await asyncio.to_thread(ui_time_to_interactive, url, token, namespace))
        return lines
    finally:
        with contextlib.suppress(Exception):
            await admin.delete(f"/api/v1/namespaces/{namespace}")
        await admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke sizes: 100 workflows, 10 clients"
    )
    parser.add_argument("--kubeconfig", help="use this running cluster instead of starting one")
    parser.add_argument("--workflows", type=int, help="Workflows listed (default 1000)")
    parser.add_argument("--clients", type=int, help="SSE clients (default 50)")
    parser.add_argument("--samples", type=int, default=50, help="list requests per figure")
    args = parser.parse_args()
    args.workflows = args.workflows or (100 if args.quick else 1000)
    args.clients = args.clients or (10 if args.quick else 50)
    cpu_before, wall_before = machine_cpu_seconds(), time.monotonic()
    try:
        with control_plane(args) as (kubeconfig, logs, _pids):
            lines = asyncio.run(run(args, kubeconfig, logs))
    except BenchError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    busy = (machine_cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
    print(f"\nshoal server on the test control plane ({os.cpu_count()} cores)")
    print(
        f"machine load: 1-min average {os.getloadavg()[0]:.2f}, busy {busy:.2f} cores over the run"
    )
    for line in lines:
        print(line)
    return 2 if any("MISS" in line for line in lines) else 0


if __name__ == "__main__":
    raise SystemExit(main())
