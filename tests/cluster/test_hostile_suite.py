"""A table of hostile manifests, protocol streams and pod behaviours on the real control
plane (issue 13, item 9), and the operator's memory bound.

One operator, started by this module, watches two namespaces of its own: the hostile one
and a canary's. Each case asserts what a user relies on: refused at create with the
offending field named, or that Workflow alone in `Error`/`Failed` with a message naming
the node and the field. Every case of a batch runs at once, and a canary Workflow in the
other namespace must succeed on time while they do. The operator's resident memory after
the suite must stay within 1.5x its fresh figure (measured after its first canary): ~1.1x
after the main batch, ~1.2x after the two Workflows carrying more JSON values than the
limits allow (the operator's decoder cuts such values; held whole, they cost 30-35 MiB
each that were never returned).
Cases already covered elsewhere (deep `args`, nested macros, expression budget, forged
pods, forged control lines in a job's own output, ServiceAccounts) are not repeated.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from shoal.api import limits
from tests.cluster.conftest import (
    ArtifactBucket,
    OperatorProcess,
    create_workflow,
    start_operator,
    wait_workflow,
)
from tests.cluster.test_hostile_bounds import make_namespace
from tests.support.plugin import Kubectl

pytestmark = [pytest.mark.cluster]

IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"
CANARY_SECONDS = 90
PENDING_SECONDS = 15  # the default: room for a busy machine's pods to start
RSS_BOUND = 1.5


def workflow(name: str, *nodes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"image": IMAGE, "nodes": list(nodes), **spec},
    }


def sh(name: str, script: str, **extra: Any) -> dict[str, Any]:
    """A command node running `script`; `$T` is the attempt's protocol prefix."""
    prefix = 'T="@shoal/2:$SHOAL_PROTOCOL_TOKEN"; '
    return {"name": name, "command": ["sh", "-c", prefix + script], **extra}


NOOP = {"name": "a", "job": "shoal.noop"}


# -- refused at create -------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """A manifest the API server must refuse, naming `fields` in its error."""

    doc: dict[str, Any]
    fields: tuple[str, ...]


def _with(node: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return workflow("refused", {**node, **extra})


REFUSED: dict[str, Refused] = {
    "node-name-not-a-dns-label": Refused(
        workflow("refused", {"name": "Bad_Name", "job": "shoal.noop"}), ("spec.nodes[0].name",)
    ),
    "node-name-too-long": Refused(
        workflow("refused", {"name": "n" * (limits.MAX_NAME_LENGTH + 1), "job": "shoal.noop"}),
        ("spec.nodes[0].name", "Too long"),
    ),
    "too-many-nodes": Refused(
        workflow(
            "refused",
            *({"name": f"n{i}", "job": "shoal.noop"} for i in range(limits.MAX_NODES + 1)),
        ),
        ("spec.nodes", "Too many"),
    ),
    "no-nodes": Refused(workflow("refused"), ("spec.nodes",)),
    "duplicate-node-names": Refused(
        workflow("refused", NOOP, NOOP), ("spec.nodes[1]", "Duplicate")
    ),
    "when-too-long": Refused(
        _with(NOOP, when="true && " * (limits.MAX_EXPRESSION_LENGTH // 8) + "true"),
        ("spec.nodes[0].when", "Too long"),
    ),
    "self-dependency": Refused(
        _with(NOOP, dependsOn=["a"]), ("spec.nodes[0].dependsOn", "cannot depend on itself")
    ),
    "bad-run-policy-enum": Refused(
        _with(NOOP, runPolicy="Sometimes"), ("spec.nodes[0].runPolicy",)
    ),
    "unknown-field": Refused(_with(NOOP, comand=["sh"]), ('unknown field "spec.nodes[0].comand"',)),
    "depends-on-not-a-list": Refused(_with(NOOP, dependsOn="a"), ("spec.nodes[0].dependsOn",)),
    "retries-over-limit": Refused(
        _with(NOOP, retries={"limit": 1_000_000}), ("spec.nodes[0].retries.limit",)
    ),
    "zero-parallelism": Refused(_with(NOOP, parallelism=0), ("spec.nodes[0].parallelism",)),
    "negative-timeout": Refused(_with(NOOP, timeoutSeconds=-1), ("spec.nodes[0].timeoutSeconds",)),
    "service-account-path": Refused(
        _with(NOOP, serviceAccountName="../kube-system/admin"),
        ("spec.nodes[0].serviceAccountName",),
    ),
    "command-with-too-many-args": Refused(
        {**workflow("refused", {"name": "a", "command": ["true", *["x"] * limits.MAX_LIST_ITEMS]})},
        ("spec.nodes[0].command", "Too many"),
    ),
    "job-and-command": Refused(
        _with(NOOP, command=["true"]), ("spec.nodes[0]", "set either `job` or `command`")
    ),
    "bucket-not-a-bucket-name": Refused(
        workflow("refused", NOOP, artifacts={"store": {"bucket": "UP/../x"}}),
        ("spec.artifacts.store.bucket",),
    ),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_refused_at_create_with_the_field_named(
    case: str, hostile: Hostile, kubectl: Kubectl
) -> None:
    refused = REFUSED[case]
    doc = {**refused.doc, "metadata": {"name": case}}
    proc = kubectl(
        "create", "-f", "-", namespace=hostile.target, stdin=json.dumps(doc), check=False
    )
    assert proc.returncode != 0, f"{case} was accepted: {proc.stdout}"
    assert "AlreadyExists" not in proc.stderr, proc.stderr
    for text in refused.fields:
        assert text in proc.stderr, proc.stderr[:2000]


# -- stored, then refused or failed by the operator ---------------------------------------


@dataclass(frozen=True)
class Ends:
    """A Workflow the API server stores; it must end in `phase` with `texts` in the
    Workflow's message (`node` None) or in that node's message."""

    doc: dict[str, Any]
    phase: str
    texts: tuple[str, ...]
    node: str | None = None
    node_phase: str = "Failed"
    check: Callable[[dict[str, Any]], None] | None = None


def _outputs_are(expected: dict[str, Any], node: str = "a") -> Callable[[dict[str, Any]], None]:
    def check(status: dict[str, Any]) -> None:
        assert status["nodes"][node].get("outputs") == expected, status["nodes"][node]

    return check


def _message_shorter_than(chars: int, node: str = "a") -> Callable[[dict[str, Any]], None]:
    def check(status: dict[str, Any]) -> None:
        assert len(status["nodes"][node]["message"]) < chars, len(status["nodes"][node]["message"])

    return check


DEEP_OUTPUT = '{"type":"output","key":"deep","value":' + "[" * 500 + "]" * 500 + "}"
FORGED_FAILURE = '{"type":"result","status":"failed","message":"forged"}'
HUGE_LIST = list(range(limits.MAX_JSON_ELEMENTS + 1))

ENDS: dict[str, Ends] = {
    # Manifests that only the operator can judge: Error, message naming node and field.
    "dependency-cycle": Ends(
        workflow(
            "cycle",
            {"name": "a", "job": "shoal.noop", "dependsOn": ["b"]},
            {"name": "b", "job": "shoal.noop", "dependsOn": ["a"]},
        ),
        "Error",
        ("dependsOn: dependency cycle: ",),
    ),
    "unknown-dependency": Ends(
        workflow("unknowndep", {"name": "a", "job": "shoal.noop", "dependsOn": ["ghost"]}),
        "Error",
        ("node 'a': dependsOn: unknown dependency 'ghost'",),
    ),
    "cel-syntax-error": Ends(
        workflow("celsyntax", {**NOOP, "when": "params.x ==== )"}, parameters={"x": 1}),
        "Error",
        ("node 'a': when: bad expression:",),
    ),
    "cel-brackets-too-deep": Ends(
        workflow("celdeep", {**NOOP, "when": "(" * 200 + "true" + ")" * 200}),
        "Error",
        ("node 'a': when: bad expression:", f"(limit {limits.MAX_EXPRESSION_NESTING})"),
    ),
    "constant-foreach-not-a-list": Ends(
        workflow("foreachint", {**NOOP, "forEach": "1 + 2", "itemArg": "x"}),
        "Error",
        ("node 'a': forEach: must yield a list, got int",),
    ),
    "constant-foreach-type-error": Ends(
        workflow("foreachtype", {**NOOP, "forEach": "[1, 2] + 'x'", "itemArg": "x"}),
        "Error",
        ("node 'a': forEach: cannot be evaluated:", "No such overload"),
    ),
    "item-arg-collides-with-args": Ends(
        workflow("itemarg", {**NOOP, "forEach": [1, 2], "itemArg": "x", "args": {"x": 0}}),
        "Error",
        ("node 'a': itemArg: 'x' is also given in args",),
    ),
    "template-names-an-unknown-node": Ends(
        workflow("template", {**NOOP, "args": {"x": "${{ nodes.ghost.outputs.y }}"}}),
        "Error",
        ("node 'a': args: refers to unknown node 'ghost'",),
    ),
    "undeclared-parameter": Ends(
        workflow("undeclared", {**NOOP, "when": "params.nope == 1"}),
        "Error",
        ("node 'a': when: refers to params.nope, which is not declared",),
    ),
    # Evaluated at run time: that node fails, the Workflow is Failed.
    "runtime-foreach-not-a-list": Ends(
        workflow("rtforeach", {**NOOP, "forEach": "params.n", "itemArg": "x"}, parameters={"n": 3}),
        "Failed",
        ("forEach must yield a list, got int",),
        node="a",
    ),
    "runtime-cel-type-error": Ends(
        workflow("rttype", {**NOOP, "when": "params.n + 'x' == 'y'"}, parameters={"n": 3}),
        "Failed",
        ("when: ", "No such overload"),
        node="a",
    ),
    # Pod behaviours.
    "image-that-does-not-exist": Ends(
        workflow("noimage", {**NOOP, "image": "registry.invalid/nope/worker:1"}),
        "Failed",
        (f"did not start within {PENDING_SECONDS}s", "ImagePull"),
        node="a",
    ),
    "exit-by-signal": Ends(
        workflow("signal", sh("a", "sh -c 'kill -KILL $PPID'; sleep 30")),
        "Failed",
        ("Exit code 137, SIGKILL",),
        node="a",
    ),
    "forged-failure-record-then-exit-0": Ends(
        workflow(
            "forgedfail",
            sh(
                "a",
                f"echo '@shoal/1 {FORGED_FAILURE}'; echo '@shoal/2:{'f' * 32} {FORGED_FAILURE}'; "
                """echo "$T"' {"type":"output","key":"n","value":1}'""",
            ),
        ),
        "Succeeded",
        (),
        node="a",
        node_phase="Succeeded",
        check=_outputs_are({"n": 1}),
    ),
    "100k-log-lines": Ends(
        workflow(
            "manylines",
            sh("a", """seq 1 100000; echo "$T"' {"type":"output","key":"n","value":2}'"""),
        ),
        "Succeeded",
        (),
        node="a",
        node_phase="Succeeded",
        check=_outputs_are({"n": 2}),
    ),
    "invalid-utf8-and-nul-bytes": Ends(
        workflow(
            "badbytes",
            sh(
                "a",
                r"printf 'a\377\376b\000c\r\033[2J\n\300\n'; "
                """echo "$T"' {"type":"output","key":"n","value":"ok"}'""",
            ),
        ),
        "Succeeded",
        (),
        node="a",
        node_phase="Succeeded",
        check=_outputs_are({"n": "ok"}),
    ),
    "4-mib-line-without-newline": Ends(
        workflow(
            "hugeline",
            sh(
                "a",
                "head -c 4194304 /dev/zero | tr '\\000' x; echo; "
                """echo "$T"' {"type":"output","key":"n","value":4}'""",
            ),
        ),
        "Succeeded",
        (),
        node="a",
        node_phase="Succeeded",
        check=_outputs_are({"n": 4}),
    ),
    "huge-termination-message": Ends(
        workflow(
            "hugeterm",
            sh("a", "head -c 1048576 /dev/zero | tr '\\000' x > /dev/termination-log; exit 3"),
        ),
        "Failed",
        ("Exit code 3", "termination message:"),
        node="a",
        check=_message_shorter_than(16 * 1024),
    ),
    "outputs-nested-500-deep": Ends(
        workflow("deepout", sh("a", f"""echo "$T"' {DEEP_OUTPUT}'""")),
        "Failed",
        (f"outputs: nests deeper than {limits.MAX_DECODE_DEPTH} levels",),
        node="a",
    ),
}


HEAVY: dict[str, Ends] = {
    # The largest values the limits let through (about 1.3 MB of JSON, under etcd's
    # 1.5 MiB): refused, but each costs the operator tens of MiB (see the last test).
    "parameters-with-too-many-values": Ends(
        workflow("bigparams", NOOP, parameters={"xs": HUGE_LIST}),
        "Error",
        ("spec.parameters: has more than", f"(limit {limits.MAX_JSON_ELEMENTS})"),
    ),
    "literal-foreach-with-too-many-values": Ends(
        workflow("bigforeach", {**NOOP, "forEach": HUGE_LIST, "itemArg": "x"}),
        "Error",
        ("node 'a': forEach: has more than", f"(limit {limits.MAX_JSON_ELEMENTS})"),
    ),
}


@dataclass
class Hostile:
    """The module's operator, its namespaces and what it has been given."""

    operator: OperatorProcess
    target: str
    canary: str
    k8s_api: Any
    baseline_rss_kib: int = 0
    submitted: dict[str, str] = field(default_factory=dict)
    refusals: dict[str, str] = field(default_factory=dict)
    canaries: list[float] = field(default_factory=list)

    def run_canary(self) -> float:
        """A plain Workflow in the canary namespace succeeds within CANARY_SECONDS."""
        name = f"canary-{secrets.token_hex(3)}"
        started = time.monotonic()
        create_workflow(self.k8s_api, self.canary, workflow(name, NOOP))
        body = wait_workflow(self.k8s_api, self.canary, name, timeout=CANARY_SECONDS)
        assert body["status"]["phase"] == "Succeeded", body["status"]
        took = time.monotonic() - started
        self.canaries.append(took)
        assert self.operator.proc.poll() is None, self.operator.output()
        return took


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def hostile(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    artifact_store: ArtifactBucket,
    tmp_path_factory: Any,
) -> Iterator[Hostile]:
    base = f"hs-{secrets.token_hex(3)}"
    target_ns = make_namespace(k8s_api, f"{base}-h", artifact_store)
    canary_ns = make_namespace(k8s_api, f"{base}-c", artifact_store)
    log = tmp_path_factory.mktemp("hostile") / "operator.log"
    op = start_operator(
        kubeconfig, f"{base}-*", log, artifact_store, pending_timeout=PENDING_SECONDS
    )
    try:
        state = Hostile(op, next(target_ns), next(canary_ns), k8s_api)
        state.run_canary()
        state.baseline_rss_kib = rss_kib(op.proc.pid)
        yield state
    finally:
        op.stop()
        print(f"\nhostile suite operator log: {log}")
        for gen in (target_ns, canary_ns):
            next(gen, None)


def submit(hostile: Hostile, cases: dict[str, Ends]) -> Hostile:
    """Create every case at once, then a canary that must succeed while they run."""
    for case, ends in cases.items():
        doc = json.loads(json.dumps(ends.doc))
        doc["metadata"]["name"] = case
        try:
            create_workflow(hostile.k8s_api, hostile.target, doc)
        except ApiException as err:
            hostile.refusals[case] = str(err.body)[:2000]
        else:
            hostile.submitted[case] = case
    hostile.run_canary()
    return hostile


def check_ends(hostile: Hostile, case: str, ends: Ends) -> None:
    assert case not in hostile.refusals, f"refused at create: {hostile.refusals[case]}"
    body = wait_workflow(hostile.k8s_api, hostile.target, case, timeout=150)
    status = body["status"]
    assert status["phase"] == ends.phase, json.dumps(status)[:3000]
    if ends.node is None:
        message = status.get("message") or ""
    else:
        node = status["nodes"][ends.node]
        assert node["phase"] == ends.node_phase, node
        message = node.get("message") or ""
    for text in ends.texts:
        assert text in message, message[:3000]
    if ends.check is not None:
        ends.check(status)
    assert len(json.dumps(status)) < 64 * 1024, "status grew with hostile output"
    assert hostile.operator.proc.poll() is None, hostile.operator.output()


@pytest.fixture(scope="module")
def batch(hostile: Hostile) -> Hostile:
    return submit(hostile, ENDS)


def test_a_canary_succeeds_on_time_while_the_batch_runs(batch: Hostile) -> None:
    assert len(batch.canaries) >= 2
    assert max(batch.canaries) < CANARY_SECONDS


@pytest.mark.parametrize("case", list(ENDS), ids=list(ENDS))
def test_stored_hostile_workflow_ends_with_node_and_field_named(case: str, batch: Hostile) -> None:
    check_ends(batch, case, ENDS[case])


def check_memory(hostile: Hostile, cases: dict[str, Ends]) -> None:
    """Every case has ended and a canary still succeeds; RSS is within 1.5x of fresh."""
    for case in cases:
        if case in hostile.submitted:
            wait_workflow(hostile.k8s_api, hostile.target, case, timeout=150)
    hostile.run_canary()
    after = rss_kib(hostile.operator.proc.pid)
    ratio = after / hostile.baseline_rss_kib
    print(f"operator RSS: fresh {hostile.baseline_rss_kib} KiB, now {after} KiB ({ratio:.2f}x)")
    assert "Traceback" not in hostile.operator.output(), hostile.operator.output()[-6000:]
    assert ratio <= RSS_BOUND, (hostile.baseline_rss_kib, after)


def test_operator_memory_within_bound_after_the_batch(batch: Hostile) -> None:
    check_memory(batch, ENDS)


@pytest.fixture(scope="module")
def heavy_batch(batch: Hostile) -> Hostile:
    return submit(batch, HEAVY)


@pytest.mark.parametrize("case", list(HEAVY), ids=list(HEAVY))
def test_largest_allowed_values_end_in_error_naming_the_limit(
    case: str, heavy_batch: Hostile
) -> None:
    check_ends(heavy_batch, case, HEAVY[case])
    assert max(heavy_batch.canaries) < CANARY_SECONDS


def test_operator_memory_within_bound_after_the_largest_values(heavy_batch: Hostile) -> None:
    check_memory(heavy_batch, HEAVY)
