"""Sharded operators on the real control plane (docs/scaling.md).

Each test drives operators of its own (the namespace is excluded from the session's).
Three replicas run a mixed batch of 60 workflows, half of it while the replica holding
a frequent CronWorkflow's shard is SIGKILLed; the same mix runs while the replicas are
scaled 3 → 1 → 3; and a replica frozen past its renew deadline (SIGSTOP), whose shards
another holder took meanwhile, sends no write once it runs again.

The mix: chains that hand each node's output to the next, fan-outs over a list a step
printed, and nodes that fail their first attempt and succeed on retry. Every node
appends a line to a marks file when it runs, naming its attempt and the output it was
handed, so a node run twice, an attempt too many or an output lost shows up there;
every Job and cron run carries the replica that created it (`shoal.dev/created-by`).
"""

from __future__ import annotations

import contextlib
import datetime
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from shoal.sharding.policy import quotas, shard_of
from tests.cluster.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    create_workflow,
    custom,
    start_operator,
    wait_until,
    wait_workflow,
)
from tests.cluster.test_cron import LABEL, create_cron, cron, epoch, get_cron

pytestmark = pytest.mark.cluster

SHARDS = 8
LEASE, RENEW, RETRY = 15.0, 10.0, 2.0
"""The defaults. Shorter ones (10, 7, 1) hand over faster, but on the 2-core machine
shared with other control planes a renewal pass (a list and a PUT per held shard) was
seen to take over 7 s: the holder then rightly stops, its last status write is refused,
and the next holder's Job creation meets AlreadyExists, which these tests forbid."""
PENDING = 90.0
"""The replicas' `--pending-timeout`: under a batch's burst on that machine the Job
controller was seen to create no pod for a minute; a pod not created in time is
retried as an infrastructure failure, an attempt these tests would count as extra."""
CREATED_BY = "shoal.dev/created-by"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """One sharded `shoal operator` process with its own identity and metrics port."""

    def __init__(self, kubeconfig: Path, namespace: str, name: str, log: Path) -> None:
        self.name, self.port, self.log = name, free_port(), log
        args = [
            *("--shards", str(SHARDS), "--identity", name, "--lease-namespace", namespace),
            *("--lease-duration", str(LEASE), "--renew-deadline", str(RENEW)),
            *("--lease-retry", str(RETRY), "--metrics-port", str(self.port)),
            *("--metrics-host", "127.0.0.1"),
        ]
        self.op: OperatorProcess = start_operator(
            kubeconfig, namespace, log, pending_timeout=PENDING, extra_args=args
        )

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def metric(self, name: str) -> float:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} not in {self.name}'s metrics")


def marking(node: str, seconds: float) -> list[str]:
    script = f'echo "$SHOAL_WORKFLOW/{node}-${{SHOAL_ITEM_INDEX:-x}}" >> "$MARKS"; sleep {seconds}'
    return ["sh", "-c", script]


def workflow(name: str, marks: Path, seconds: float = 0.2, chain: int = 2) -> dict[str, Any]:
    """A chain of `chain` nodes, then a fan-out of two items."""
    env = [{"name": "MARKS", "value": str(marks)}]
    nodes: list[dict[str, Any]] = []
    for i in range(chain):
        nodes.append({"name": f"s{i}", "command": marking(f"s{i}", seconds), "env": env})
        if i:
            nodes[-1]["dependsOn"] = [f"s{i - 1}"]
    nodes.append(
        {
            "name": "fan",
            "dependsOn": [f"s{chain - 1}"],
            "forEach": [0, 1],
            "command": marking("fan", seconds),
            "env": env,
        }
    )
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"nodes": nodes},
    }


def expected_marks(names: list[str], chain: int = 2) -> list[str]:
    per = [f"s{i}-x" for i in range(chain)] + ["fan-0", "fan-1"]
    return sorted(f"{n}/{m}" for n in names for m in per)


def holders(k8s_api: Any, namespace: str) -> dict[str, str]:
    from kubernetes import client

    leases: Any = client.CoordinationV1Api(k8s_api).list_namespaced_lease(
        namespace, label_selector="shoal.dev/lease=shard"
    )
    return {lease.metadata.name: lease.spec.holder_identity or "" for lease in leases.items}


def jobs(k8s_api: Any, namespace: str) -> list[Any]:
    from kubernetes import client

    return list(client.BatchV1Api(k8s_api).list_namespaced_job(namespace).items)


# -- the mixed batch ----------------------------------------------------------------------

RETRIES = {"limit": 2, "backoffSeconds": 0}


def step(
    node: str,
    marks: Path,
    seconds: float,
    *,
    given: str = "",
    emit: str = "",
    flaky: str = "",
    **fields: Any,
) -> dict[str, Any]:
    """A node that marks its run as `<workflow>/<node>-<item>-a<attempt>=<given>`, sleeps,
    fails its first attempt when the shell test `flaky` holds (then is retried), and
    prints its captured result with the shell command `emit`."""
    mark = "$SHOAL_WORKFLOW/" + node + "-${SHOAL_ITEM_INDEX:-x}-a$SHOAL_ATTEMPT=$1"
    script = f'echo "{mark}" >> "$MARKS"; sleep {seconds}'
    if flaky:
        script += f'; if [ "$SHOAL_ATTEMPT" = 1 ] && {flaky}; then exit 1; fi'
        fields["retries"] = RETRIES
    if emit:
        script += f"; {emit}"
        fields["captureStdout"] = True
    env = [{"name": "MARKS", "value": str(marks)}]
    return {"name": node, "command": ["sh", "-c", script, "sh", given], "env": env, **fields}


def chain(marks: Path, seconds: float) -> list[dict[str, Any]]:
    """a → b → c, each handing its output to the next."""
    return [
        step("a", marks, seconds, emit='printf %s "$SHOAL_WORKFLOW.a"'),
        step(
            "b",
            marks,
            seconds,
            dependsOn=["a"],
            given="${{ nodes.a.outputs.result }}",
            emit='printf %s "$1.b"',
        ),
        step("c", marks, seconds, dependsOn=["b"], given="${{ nodes.b.outputs.result }}"),
    ]


def fan(marks: Path, seconds: float) -> list[dict[str, Any]]:
    """A fan-out over the list `gen` printed, its item 1 failing once."""
    listing = 'printf \'["%s.0","%s.1"]\' "$SHOAL_WORKFLOW" "$SHOAL_WORKFLOW"'
    return [
        step("gen", marks, seconds, emit=listing),
        step(
            "fan",
            marks,
            seconds,
            dependsOn=["gen"],
            forEach="${{ nodes.gen.outputs.result }}",
            given="${{ item }}",
            flaky='[ "$SHOAL_ITEM_INDEX" = 1 ]',
        ),
    ]


def retry(marks: Path, seconds: float) -> list[dict[str, Any]]:
    """A node failing its first attempt, whose retry's output the next node gets."""
    return [
        step("flaky", marks, seconds, flaky="true", emit='printf %s "$SHOAL_WORKFLOW.flaky"'),
        step(
            "after", marks, seconds, dependsOn=["flaky"], given="${{ nodes.flaky.outputs.result }}"
        ),
    ]


SHAPES: dict[str, Callable[[Path, float], list[dict[str, Any]]]] = {
    "chain": chain,
    "fan": fan,
    "retry": retry,
}


def shape_marks(name: str) -> list[str]:
    """What a workflow of the mix marks when each node runs once (the flaky ones twice)."""
    w, kind = name, name.split("-")[1]
    return {
        "chain": [f"{w}/a-x-a1=", f"{w}/b-x-a1={w}.a", f"{w}/c-x-a1={w}.a.b"],
        "fan": [
            f"{w}/gen-x-a1=",
            f"{w}/fan-0-a1={w}.0",
            f"{w}/fan-1-a1={w}.1",
            f"{w}/fan-1-a2={w}.1",
        ],
        "retry": [f"{w}/flaky-x-a1=", f"{w}/flaky-x-a2=", f"{w}/after-x-a1={w}.flaky"],
    }[kind]


def mix(prefix: str, count: int) -> list[str]:
    """`count` workflow names, `<prefix>-<shape>-<i>`, the shapes in turn."""
    kinds = list(SHAPES)
    return [f"{prefix}-{kinds[i % len(kinds)]}-{i}" for i in range(count)]


def submit(k8s_api: Any, namespace: str, names: list[str], marks: Path, seconds: float) -> None:
    for name in names:
        nodes = SHAPES[name.split("-")[1]](marks, seconds)
        doc = {
            "apiVersion": "shoal.dev/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": name},
            "spec": {"nodes": nodes},
        }
        create_workflow(k8s_api, namespace, doc)


def all_succeed(k8s_api: Any, namespace: str, names: list[str], timeout: float) -> None:
    """Every workflow of `names` Succeeded, within one deadline for all."""
    deadline = time.monotonic() + timeout
    for name in names:
        left = max(1.0, deadline - time.monotonic())
        status = wait_workflow(k8s_api, namespace, name, timeout=left)["status"]
        assert status["phase"] == "Succeeded", (name, status.get("message"))


def check_marks(marks: Path, names: list[str]) -> None:
    """Each node ran once per expected attempt (no run twice, no extra attempt) and was
    handed its upstream output (none lost)."""
    ran = sorted(marks.read_text().split())
    want = sorted(m for n in names for m in shape_marks(n))
    assert ran == want, f"marks beyond and short of those expected: {difference(ran, want)}"


def difference(got: list[str], want: list[str]) -> tuple[list[str], list[str]]:
    """(what `got` has too many of, what it lacks), counting repeats."""
    extra, lacking = Counter(got) - Counter(want), Counter(want) - Counter(got)
    return sorted(extra.elements()), sorted(lacking.elements())


def attempt_of(job: Any) -> str:
    """A Job as `<workflow>/<node>-<item>-a<attempt>` (a mark's head; a node that is no
    fan-out is item 0, marked x)."""
    labels = job.metadata.labels or {}
    node, item = labels["shoal.dev/node"], labels["shoal.dev/item"]
    return f"{labels['shoal.dev/workflow']}/{node}-{item}-a{labels['shoal.dev/attempt']}"


def check_jobs(k8s_api: Any, namespace: str, creators: Iterable[str], names: list[str]) -> None:
    """Every Job (the cron's runs' too) names one of `creators` as its creator, and the
    batch has exactly one Job per expected attempt: no node redone, no attempt added."""
    every = jobs(k8s_api, namespace)
    made = Counter((j.metadata.annotations or {}).get(CREATED_BY) for j in every)
    assert set(made) <= set(creators), made
    batch = sorted(attempt_of(j) for j in every if j.metadata.labels["shoal.dev/workflow"] in names)
    runs = (m.split("=")[0].replace("-x-a", "-0-a") for n in names for m in shape_marks(n))
    want = sorted(runs)
    assert batch == want, f"Jobs beyond and short of the attempts: {difference(batch, want)}"


# -- the replicas -------------------------------------------------------------------------


def start(kubeconfig: Path, namespace: str, tmp_path: Path, *names: str) -> dict[str, Replica]:
    return {n: Replica(kubeconfig, namespace, n, tmp_path / f"{n}.log") for n in names}


def stop_all(replicas: Iterable[Replica]) -> None:
    """SIGTERM to every one at once, as a scale-down or an uninstall sends it, then wait."""
    reps = list(replicas)
    for rep in reps:
        with contextlib.suppress(ProcessLookupError):
            rep.op.proc.terminate()
    for rep in reps:  # one SIGTERM each: a second one could land after its handler is gone
        try:
            rep.op.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rep.op.kill()


def settled(k8s_api: Any, namespace: str, names: Iterable[str]) -> bool:
    """Every shard held, each of `names` holding exactly its fair share."""
    held = Counter(holders(k8s_api, namespace).values())
    return held == Counter(quotas(names, SHARDS))


def no_clashes(live: Iterable[Replica], gone: Iterable[Replica] = ()) -> None:
    """No creation of these replicas fell back on AlreadyExists: the running ones by their
    metric, the stopped ones by the line `KubeApi.create` logs for each. A drained runner
    writes its status before it ends (kube/runner `_last_write`), so even a hand-off that
    cancels a fan-out mid-expansion leaves its successor nothing to create again."""
    running, stopped = list(live), list(gone)
    every = running + stopped
    lines = [line for r in every for line in r.log_lines() if ": already exists" in line]
    lost = [line for r in every for line in r.log_lines() if "not renewed within" in line]
    assert not lines, (lines, "leases lost (a slow API server?)", lost)
    assert [r.metric("shoal_api_already_exists") for r in running] == [0.0] * len(running)


def started(k8s_api: Any, namespace: str, prefix: str, by: str | None = None) -> int:
    """How many Jobs of the workflows named `<prefix>-…` exist (created by `by`)."""
    return sum(
        1
        for j in jobs(k8s_api, namespace)
        if j.metadata.labels["shoal.dev/workflow"].startswith(prefix + "-")
        and by in (None, (j.metadata.annotations or {}).get(CREATED_BY))
    )


# -- the cron -----------------------------------------------------------------------------

TICK_EVERY = 3


class Ticks:
    """A CronWorkflow firing every TICK_EVERY s through a whole test, every run kept."""

    def __init__(self, k8s_api: Any, namespace: str) -> None:
        self.k8s_api, self.namespace = k8s_api, namespace
        doc = cron(
            "tick",
            {"name": "a", "command": ["true"]},
            schedule=f"*/{TICK_EVERY} * * * * *",
            catchUp={"policy": "all", "maxRuns": 100},
            successfulRunsHistoryLimit=1000,
            failedRunsHistoryLimit=1000,
        )
        create_cron(k8s_api, namespace, doc)

    def runs(self) -> dict[int, str]:
        """Scheduled time (epoch seconds) → the replica that created its run."""
        listing = custom(self.k8s_api).list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "workflows", label_selector=f"{LABEL}=tick"
        )
        return {
            epoch(r["metadata"]["name"]): (r["metadata"].get("annotations") or {}).get(
                CREATED_BY, ""
            )
            for r in listing["items"]
        }

    def holder(self) -> str:
        """The replica holding the cron's shard."""
        uid = get_cron(self.k8s_api, self.namespace, "tick")["metadata"]["uid"]
        return holders(self.k8s_api, self.namespace)[f"shoal-shard-{shard_of(uid, SHARDS):02d}"]

    def fired(self, by: Iterable[str], after: float) -> bool:
        """Every time so far fired, and one later than `after` (epoch) by one of `by`."""
        runs, who = self.runs(), set(by)
        return gapless(runs) and any(t > after and c in who for t, c in runs.items())

    def check(self, replicas: Iterable[Replica]) -> dict[int, str]:
        """Once per scheduled time: none missed, and no replica tried one twice (its
        creation would have met AlreadyExists)."""
        runs = self.runs()
        assert gapless(runs), f"a scheduled time was missed: {sorted(runs)}"
        twice = [
            line
            for r in replicas
            for line in r.log_lines()
            if "already exists" in line and "/workflows tick-" in line
        ]
        assert not twice, twice
        return runs


def gapless(runs: dict[int, str]) -> bool:
    times = sorted(runs)
    return bool(times) and times == list(range(times[0], times[-1] + 1, TICK_EVERY))


def test_own_operator_three_replicas_run_a_mixed_batch_each_job_created_once(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    """60 workflows of the mix over three replicas, under a cron every 3 s: 30 calm (no
    creation meets AlreadyExists), then 30 while the replica holding the cron's shard is
    SIGKILLed mid-run. Every workflow succeeds, each node ran once per attempt with its
    input, each Job names one creator, and the cron fired once per time throughout."""
    marks = tmp_path / "marks"
    marks.touch()
    names = ["r0", "r1", "r2"]
    replicas = start(kubeconfig, namespace, tmp_path, *names)
    calm, storm = mix("calm", 30), mix("storm", 30)
    try:
        wait_until(lambda: settled(k8s_api, namespace, names), 90, "each replica its share")
        ticks = Ticks(k8s_api, namespace)
        submit(k8s_api, namespace, calm, marks, seconds=0.2)
        all_succeed(k8s_api, namespace, calm, timeout=300)
        # The normal hand-off never needed the last line of defence.
        no_clashes(replicas.values())
        assert all(started(k8s_api, namespace, "calm", by=n) for n in names), "a replica idle"

        victim = ticks.holder()
        submit(k8s_api, namespace, storm, marks, seconds=0.5)
        wait_until(lambda: started(k8s_api, namespace, "storm", by=victim) >= 2, 120, "work")
        killed_at = time.time()
        replicas[victim].op.kill()
        survivors = [n for n in names if n != victim]
        all_succeed(k8s_api, namespace, storm, timeout=300)
        wait_until(lambda: victim not in holders(k8s_api, namespace).values(), 60, "hand-off")
        wait_until(lambda: ticks.fired(survivors, killed_at), 60, "a survivor firing the cron")
        during = ticks.runs()  # the stops below hand the cron on again
    finally:
        stop_all(replicas.values())
    check_marks(marks, calm + storm)
    check_jobs(k8s_api, namespace, names, calm + storm)
    runs = ticks.check(replicas.values())
    assert min(runs) < killed_at < max(during), sorted(runs)
    creators = set(during.values())
    assert victim in creators, creators
    assert len(creators - {victim}) == 1, f"after the hand-off one replica fires: {creators}"


class Thief:
    """The test as another replica: takes every shard lease (once they may be taken) and
    renews them from a thread until released."""

    def __init__(self, k8s_api: Any, namespace: str) -> None:
        from kubernetes import client

        self.leases = client.CoordinationV1Api(k8s_api)
        self.namespace = namespace
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._renew, daemon=True)

    def _write(self, holder: str | None) -> None:
        now = datetime.datetime.now(datetime.UTC)
        listing: Any = self.leases.list_namespaced_lease(
            self.namespace, label_selector="shoal.dev/lease=shard"
        )
        for lease in listing.items:
            lease.spec.holder_identity = holder
            lease.spec.renew_time = now
            name = str(lease.metadata.name)
            self.leases.replace_namespaced_lease(name, self.namespace, lease)

    def take(self) -> None:
        self._write("thief")
        self.thread.start()

    def _renew(self) -> None:
        while not self.stop.wait(RETRY / 2):
            self._write("thief")

    def release(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self._write(None)


def snapshot(k8s_api: Any, namespace: str, name: str) -> tuple[str, list[str]]:
    """The workflow's resourceVersion and the Jobs: only the operator changes either."""
    from kubernetes import client

    body: Any = client.CustomObjectsApi(k8s_api).get_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "workflows", name
    )
    return body["metadata"]["resourceVersion"], sorted(
        j.metadata.name for j in jobs(k8s_api, namespace)
    )


def test_own_operator_frozen_past_its_renew_deadline_writes_nothing_once_thawed(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.touch()
    rep = Replica(kubeconfig, namespace, "r0", tmp_path / "r0.log")
    thief = Thief(k8s_api, namespace)
    try:
        wait_until(
            lambda: list(holders(k8s_api, namespace).values()) == ["r0"] * SHARDS,
            60,
            "r0 holding all",
        )
        create_workflow(k8s_api, namespace, workflow("frozen", marks, seconds=3.0, chain=3))
        wait_until(lambda: jobs(k8s_api, namespace), 60, "the first Job")
        rep.op.proc.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        # Another replica may take the leases only once they went unrenewed for the
        # lease duration: that wait is the protocol under test, not a synchronisation.
        wait_until(lambda: time.monotonic() > stopped_at + LEASE + RETRY, LEASE * 3, "expiry")
        thief.take()
        before = snapshot(k8s_api, namespace, "frozen")
        rep.op.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: rep.metric("shoal_shards_held") == 0, 30, "r0 to let its shards go")
        thawed_at = time.monotonic()
        # While the thief holds the shards, r0 (with a finished pod to act on) sends nothing.
        wait_until(lambda: time.monotonic() > thawed_at + 3 * RETRY, 30, "an audit window")
        assert snapshot(k8s_api, namespace, "frozen") == before, "r0 wrote after its deadline"
        thief.release()
        body = wait_workflow(k8s_api, namespace, "frozen", timeout=180)
        assert body["status"]["phase"] == "Succeeded", rep.op.output()
    finally:
        thief.stop.set()
        with contextlib.suppress(ProcessLookupError):
            rep.op.proc.send_signal(signal.SIGCONT)
        rep.op.stop()
    assert sorted(marks.read_text().split()) == expected_marks(["frozen"], chain=3)
    assert {(j.metadata.annotations or {}).get(CREATED_BY) for j in jobs(k8s_api, namespace)} == {
        "r0"
    }


def test_own_operator_scaled_three_to_one_to_three_while_a_mixed_batch_runs(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    """A Deployment scaled 3 → 1 → 3 under 24 workflows of the mix and the cron: the two
    leaving replicas (the cron's holder among them) drain and release on SIGTERM, the
    new ones are handed shards; every workflow finishes with each node run once per
    attempt with its input, the cron fires once per time, and no hand-off falls back on
    AlreadyExists."""
    marks = tmp_path / "marks"
    marks.touch()
    first = ["a", "b", "c"]
    replicas = start(kubeconfig, namespace, tmp_path, *first)
    batch = mix("scale", 24)
    try:
        wait_until(lambda: settled(k8s_api, namespace, first), 90, f"{first} each its share")
        ticks = Ticks(k8s_api, namespace)
        wait_until(ticks.runs, 30, "the cron's first run")
        holder = ticks.holder()
        keep = min(n for n in first if n != holder)
        submit(k8s_api, namespace, batch, marks, seconds=0.5)
        wait_until(lambda: started(k8s_api, namespace, "scale") >= 12, 120, "work under way")
        stop_all(replicas[n] for n in first if n != keep)
        wait_until(lambda: settled(k8s_api, namespace, [keep]), 60, f"{keep} holding all")
        replicas.update(start(kubeconfig, namespace, tmp_path, "d", "e"))
        final = [keep, "d", "e"]
        wait_until(lambda: settled(k8s_api, namespace, final), 90, f"{final} each its share")
        spread_at = time.time()
        all_succeed(k8s_api, namespace, batch, timeout=300)
        wait_until(lambda: ticks.fired(final, spread_at), 60, "the cron firing after the scale")
        leaving = [replicas[n] for n in first if n != keep]
        no_clashes([replicas[n] for n in final], gone=leaving)
        for rep in leaving:  # a rolling update's SIGTERM ends a replica cleanly
            code, traces = rep.op.proc.returncode, [t for t in rep.log_lines() if "Trace" in t]
            assert (code, traces) == (0, []), rep.log_lines()[-60:]
        during = ticks.runs()
    finally:
        stop_all(replicas.values())
    check_marks(marks, batch)
    check_jobs(k8s_api, namespace, list(replicas), batch)
    ticks.check(replicas.values())
    creators = set(during.values())
    assert {holder, keep} <= creators, f"the cron was not handed from {holder}: {creators}"
