"""bench/vs_argo.py compares like with like: both engines get the same workloads (same
shape, same items, same command), and its write count is the API server's writes only.

A ratio between engines means nothing if one of them ran a different graph; these
checks keep the two sets of manifests in step when either is edited.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import argo_peer  # noqa: E402
import vs_parts  # noqa: E402

from shoal.api.workflow import WorkflowSpec  # noqa: E402
from shoal.core.compiled import WorkflowMeta  # noqa: E402
from shoal.core.validation import compile_workflow  # noqa: E402


def _compiles(manifest: dict[str, Any]) -> None:
    spec = WorkflowSpec.model_validate(manifest["spec"])
    compile_workflow(spec, WorkflowMeta(name=manifest["metadata"]["name"], namespace="ns", uid="u"))


def _tasks(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    main = next(t for t in manifest["spec"]["templates"] if t["name"] == "main")
    return {t["name"]: t for t in main["dag"]["tasks"]}


@pytest.mark.parametrize("length", [1, 6, 30])
def test_both_chains_have_the_same_nodes_in_the_same_order(length: int) -> None:
    shoal = vs_parts.shoal_chain("c", length)
    _compiles(shoal)
    argo = _tasks(argo_peer.chain("c", length))
    shoal_deps = {n["name"]: n.get("dependsOn", []) for n in shoal["spec"]["nodes"]}
    argo_deps = {name: t.get("dependencies", []) for name, t in argo.items()}
    assert shoal_deps == argo_deps
    assert [n["command"] for n in shoal["spec"]["nodes"]] == [
        ["echo", str(i)] for i in range(length)
    ]
    assert [t["arguments"]["parameters"][0]["value"] for t in argo.values()] == [
        str(i) for i in range(length)
    ]


def test_both_fan_outs_go_over_the_same_list_at_the_same_parallelism() -> None:
    shoal = vs_parts.shoal_fan_out("f", 120, 50)
    _compiles(shoal)
    listing = shoal["spec"]["nodes"][0]["command"][2]
    message = json.loads(shlex.split(listing)[1].split(" ", 1)[1])
    assert message == {"type": "output", "key": "items", "value": list(range(120))}
    assert shoal["spec"]["nodes"][1]["parallelism"] == 50

    argo = argo_peer.fan_out("f", 120, 50)
    lister = next(t for t in argo["spec"]["templates"] if t["name"] == "list")
    assert json.loads(lister["container"]["command"][1]) == list(range(120))
    assert argo["spec"]["parallelism"] == 50
    assert _tasks(argo)["items"]["withParam"] == "{{tasks.list.outputs.result}}"


def test_every_pod_runs_the_same_image_with_a_command_of_its_own() -> None:
    shoal = vs_parts.shoal_single("s")
    _compiles(shoal)
    noop = next(t for t in argo_peer.single("s")["spec"]["templates"] if t["name"] == "noop")
    bare = vs_parts.bare_job("b")["spec"]["template"]["spec"]["containers"][0]
    images = {shoal["spec"]["image"], noop["container"]["image"], bare["image"]}
    assert images == {argo_peer.USER_IMAGE}
    assert noop["container"]["command"][0] == bare["command"][0] == "echo"


def test_api_writes_count_write_verbs_by_resource_and_leave_reads_out() -> None:
    text = "\n".join(
        [
            "# TYPE apiserver_request_total counter",
            'apiserver_request_total{code="201",resource="pods",verb="POST"} 7',
            'apiserver_request_total{code="200",resource="pods",verb="PATCH"} 2',
            'apiserver_request_total{code="200",resource="pods",verb="PUT"} 1',
            'apiserver_request_total{code="200",resource="pods",verb="LIST"} 100',
            'apiserver_request_total{code="200",resource="pods",verb="WATCH"} 9',
            'apiserver_request_total{code="200",resource="jobs",verb="DELETE"} 1',
            'apiserver_request_total{code="200",resource="jobs",verb="APPLY"} 1',
            'apiserver_request_total{code="200",resource="jobs",verb="GET"} 50',
            'apiserver_request_duration_seconds_count{resource="jobs",verb="POST"} 99',
        ]
    )
    assert vs_parts.parse_writes(text) == {"pods": 10.0, "jobs": 2.0}
    before = {"pods": 10.0, "jobs": 2.0}
    after = {"pods": 25.0, "jobs": 2.0, "workflows": 4.0}
    assert vs_parts.writes_delta(before, after) == {"pods": 15.0, "workflows": 4.0}


def test_the_executor_image_rule_runs_argoexec_from_the_build_directory() -> None:
    rule = argo_peer.image_rules(Path("/cache/argo"))[0]
    assert rule["entrypoint"] == ["/cache/argo/argoexec"]
    # The controller names the image with its tag; the rule matches it without one.
    assert argo_peer.EXECUTOR_IMAGE.startswith(rule["match"] + ":")
    assert rule["env"]["PATH"].split(":")[0] == "/cache/argo"


def test_a_fan_out_the_disk_cannot_hold_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cluster_parts import BenchError

    (tmp_path / "argoexec").write_bytes(b"x" * 1000)  # 1,000 bytes copied into each pod
    usage = argo_peer.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(argo_peer.shutil, "disk_usage", lambda _: usage._replace(free=500 * 1000))
    argo_peer.check_disk(400, tmp_path, tmp_path)  # 400 pods x 1.2 fit in 500,000 bytes
    with pytest.raises(BenchError, match=r"500-item Argo fan-out .* run --scale 0\.83"):
        argo_peer.check_disk(500, tmp_path, tmp_path)
