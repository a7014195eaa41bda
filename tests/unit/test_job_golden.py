"""Every Job a representative set of Workflows produces, compared with a recorded copy.

The copy (golden/jobs.json) was recorded from the Job builder before the defaults moved
into one resolver (`shoal.core.defaults`), so any change in precedence (a node's own value
against `spec.defaults`, an empty node value, the workflow and operator images) shows up
as a differing Job. Regenerate it only for an intended change of the Jobs:

    .venv/bin/python -c "import tests.unit.test_job_golden as g; g.record()"
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any

from shoal.api.workflow import WorkflowSpec
from shoal.core.compiled import WorkflowMeta
from shoal.core.decisions import StartTask
from shoal.core.planner import advance
from shoal.core.state import RunState
from shoal.core.validation import compile_workflow
from shoal.kube.jobs import JobDefaults, build_job

GOLDEN = Path(__file__).parent / "golden" / "jobs.json"
META = WorkflowMeta(name="golden", namespace="team-a", uid="00000000-0000-4000-8000-000000000001")
TOKEN = "0123456789abcdef0123456789abcdef"
STORE_ENV = [{"name": "SHOAL_ARTIFACTS_BUCKET", "value": "runs"}]
DEFAULT_OP = JobDefaults()
OPERATORS = {
    "default": DEFAULT_OP,
    "open": JobDefaults(image="op:2", restricted=False, deadline_backstop_seconds=5),
    "no-uid": JobDefaults(run_as_user=None, termination_grace_seconds=0),
}

# Each pod setting at the defaults and at the node: absent, set, or empty ({} / []),
# since an empty node value falls back to the defaults for some settings.
SETTINGS: dict[str, tuple[Any, Any, Any]] = {
    # name: (value in defaults, value on a node, empty value on a node)
    "image": ("defaults:1", "node:1", None),
    "resources": ({"requests": {"cpu": "100m"}}, {"limits": {"memory": "1Gi"}}, {}),
    "nodeSelector": ({"pool": "batch"}, {"pool": "gpu"}, {}),
    "tolerations": ([{"key": "batch", "operator": "Exists"}], [{"key": "gpu"}], []),
    "serviceAccountName": ("etl", "trainer", None),
    "automountServiceAccountToken": (True, False, None),
    "timeoutSeconds": (30, 2.5, None),
    "retries": ({"limit": 2}, {"limit": 0}, None),
    "env": (
        [{"name": "A", "value": "d"}, {"name": "B", "value": "${{ params.p }}"}],
        [
            {"name": "A", "value": "n"},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        [],
    ),
}


def _node(name: str, setting: str, choice: str, kind: str) -> dict[str, Any]:
    node: dict[str, Any] = {"name": name}
    if kind == "job":
        node |= {"job": "mod:fn", "args": {"x": "${{ params.p }}"}}
    elif kind == "fan-out":
        node |= {"job": "mod:fn", "forEach": [{"k": 1}, "two"], "itemArg": "item"}
    else:
        node |= {"command": ["sh", "-c"], "args": ["echo ${{ params.p }}"]}
    _, own, empty = SETTINGS[setting]
    if choice == "own":
        node[setting] = own
    elif choice == "empty" and empty is not None:
        node[setting] = empty
    return node


def specs() -> dict[str, dict[str, Any]]:
    """One Workflow per (setting, in defaults or not, workflow image or not), each node
    trying one (choice, kind) of that setting."""
    out: dict[str, dict[str, Any]] = {}
    for setting, with_defaults, wf_image in product(SETTINGS, (False, True), (False, True)):
        nodes = [
            _node(f"{choice}-{kind}", setting, choice, kind)
            for choice, kind in product(("unset", "own", "empty"), ("job", "command", "fan-out"))
        ]
        spec: dict[str, Any] = {"parameters": {"p": "v"}, "nodes": nodes}
        if with_defaults:
            spec["defaults"] = {setting: SETTINGS[setting][0]}
        if wf_image:
            spec["image"] = "workflow:1"
        out[f"{setting}/defaults={with_defaults}/image={wf_image}"] = spec
    return out


def _starts(spec: dict[str, Any]) -> list[StartTask]:
    wf = compile_workflow(WorkflowSpec.model_validate(spec), META)
    plan = advance(wf, RunState.new(list(wf.order)), 1_790_000_000.0)
    return [d for d in plan.decisions if isinstance(d, StartTask)]


def render() -> dict[str, Any]:
    """Every Job of every spec under every operator setting, keyed by where it came from."""
    jobs: dict[str, Any] = {}
    for label, spec in specs().items():
        wf = compile_workflow(WorkflowSpec.model_validate(spec), META)
        for task in _starts(spec):
            # The operator's own settings meet the workflow's only in the image.
            operators = OPERATORS if label.startswith("image/") else {"default": DEFAULT_OP}
            for op_name, op in operators.items():
                key = f"{label}/{task.node}/{task.index}/{op_name}"
                jobs[key] = build_job(wf, task, op, STORE_ENV, token=TOKEN)
    return jobs


def record() -> None:
    """Write the golden copy: one Job per line, so a change reads as a small diff."""
    lines = [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in render().items()]
    GOLDEN.write_text("{\n" + ",\n".join(sorted(lines)) + "\n}\n")


def test_the_matrix_covers_every_node_of_every_spec() -> None:
    jobs = render()
    # 9 settings x 4 specs x (6 plain nodes + 3 fan-outs of 2 items), the image's x 3 operators
    assert len(jobs) == (8 + 3) * 4 * (6 + 3 * 2)


def test_every_job_is_identical_to_the_recorded_one() -> None:
    expected = json.loads(GOLDEN.read_text())
    actual = json.loads(json.dumps(render()))
    assert sorted(actual) == sorted(expected)
    differing = [key for key in expected if actual[key] != expected[key]]
    assert not differing, f"{len(differing)} Jobs differ, first: {differing[:3]}"
