"""Workflows built with the SDK: the checks a user relies on happen when the workflow is
built, naming the node and argument, and the model is the one YAML would give."""

from __future__ import annotations

import sys
from typing import TypedDict

import pytest
from pydantic import BaseModel

from shoal.core.validation import InvalidWorkflow
from shoal.manifests import load_file
from shoal.sdk import RetryPolicy, RunPolicy, SdkError, Workflow, each, parse_yaml, to_yaml
from shoal_worker import Context, job
from tests.local.conftest import EXAMPLES


class Found(TypedDict):
    ids: list[str]
    region: str


class Total(BaseModel):
    total: int


@job("sdk-test-find")
def find(ctx: Context, region: str, limit: int = 10) -> Found:
    return {"ids": [], "region": region}


@job("sdk-test-score")
def score(ctx: Context, id: str, weight: float = 1.0) -> Total:
    return Total(total=0)


@job("sdk-test-count")
def count(ctx: Context, n: int) -> dict[str, int]:
    return {"n": n}


def fresh() -> Workflow:
    return Workflow("sdk-test", image="img:1", parameters={"region": "eu"})


def test_the_catalog_in_code_is_the_catalog_manifest() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import catalog_sdk
    finally:
        sys.path.remove(str(EXAMPLES))
    from_yaml = load_file(EXAMPLES / "catalog.yaml")[0].resource
    built = catalog_sdk.workflow.build()
    assert built == from_yaml
    assert parse_yaml(to_yaml(catalog_sdk.workflow)) == from_yaml
    assert catalog_sdk.workflow.validate().order == tuple(n.name for n in from_yaml.spec.nodes)


def test_an_unknown_argument_names_the_node_and_the_argument() -> None:
    wf = fresh()
    wf.job("find", find, regoin="eu")
    with pytest.raises(SdkError, match=r"node 'find': unknown argument 'regoin'.*region"):
        wf.build()


def test_a_missing_required_argument_names_the_node_and_the_argument() -> None:
    wf = fresh()
    wf.job("find", find, limit=3)
    with pytest.raises(SdkError, match=r"node 'find': missing required argument 'region'"):
        wf.build()


def test_a_literal_of_the_wrong_type_is_reported_with_its_argument() -> None:
    wf = fresh()
    wf.job("find", find, region="eu", limit="three")
    with pytest.raises(SdkError, match=r"node 'find': argument 'limit': expected int, got str"):
        wf.build()


def test_each_element_of_a_literal_fan_out_is_checked() -> None:
    wf = fresh()
    wf.job("count", count, n=each([1, 2, "3"]))
    with pytest.raises(SdkError, match=r"node 'count': argument 'n': expected int, got str"):
        wf.build()


def test_a_template_argument_is_checked_for_its_name_only() -> None:
    wf = fresh()
    wf.job("find", find, region=wf.params["region"], limit="${{ 2 + 3 }}")
    node = wf.build().spec.nodes[0]
    assert node.args == {"region": "${{ params.region }}", "limit": "${{ 2 + 3 }}"}


def test_declared_outputs_are_checked_by_name_and_type_across_the_edge() -> None:
    wf = fresh()
    found = wf.job("find", find, region="eu")
    with pytest.raises(SdkError, match=r"node 'find': no output 'idz'; its job declares: ids"):
        _ = found.outputs["idz"]
    wf.job("count", count, n=found.outputs["region"])
    with pytest.raises(
        SdkError, match=r"node 'count'.*argument 'n' expects int, but nodes.find.outputs.region"
    ):
        wf.build()


def test_fan_out_over_a_typed_list_checks_the_element_type() -> None:
    wf = fresh()
    found = wf.job("find", find, region="eu")
    scored = wf.job("score", score, id=found.outputs["ids"].item)
    wf.job("count", count, n=scored.outputs["total"])
    wf.build()  # str ids fill `id: str`; an int total fills `n: int`
    bad = fresh()
    found = bad.job("find", find, region="eu")
    bad.job("count", count, n=found.outputs["ids"].item)
    with pytest.raises(SdkError, match=r"argument 'n' expects int"):
        bad.build()


def test_dependencies_come_from_every_reference_in_the_order_nodes_were_added() -> None:
    wf = fresh()
    a = wf.job("a", count, n=1)
    b = wf.job("b", count, n=2)
    c = wf.job("c", count, n=b.outputs["n"]).set(when=f"{a.outputs['n'].expr} > 0")
    wf.command("d", ["echo", f"{c.phase}"])
    wf.command("e", ["true"], env={"X": f"{a.phase}"})
    wf.command("f", ["true"]).after(b, "a")
    deps = {n.name: n.depends_on for n in wf.build().spec.nodes}
    assert deps == {"a": [], "b": [], "c": ["a", "b"], "d": ["c"], "e": ["a"], "f": ["a", "b"]}


def test_names_with_a_dash_are_indexed_in_the_expression() -> None:
    wf = fresh()
    proxy = wf.job("data-proxy", count, n=1)
    assert str(proxy.outputs["end-point"]) == '${{ nodes["data-proxy"].outputs["end-point"] }}'
    assert proxy.phase.expr == 'nodes["data-proxy"].phase'


def test_fan_out_sets_for_each_and_item_arg_and_drops_the_argument() -> None:
    wf = fresh()
    found = wf.job("find", find, region="eu")
    wf.job("score", score, id=found.outputs["ids"].item, weight=2.0).set(parallelism=3)
    wf.job("literal", count, n=each([1, 2]))
    nodes = {n.name: n for n in wf.build().spec.nodes}
    assert nodes["score"].for_each == "${{ nodes.find.outputs.ids }}"
    assert nodes["score"].item_arg == "id"
    assert nodes["score"].args == {"weight": 2.0}
    assert nodes["score"].depends_on == ["find"]
    assert (nodes["literal"].for_each, nodes["literal"].item_arg) == ([1, 2], "n")


def test_undeclared_parameters_and_unknown_settings_are_named() -> None:
    wf = fresh()
    with pytest.raises(SdkError, match=r"parameter 'regoin' is not declared.*'region'"):
        _ = wf.params["regoin"]
    with pytest.raises(SdkError, match=r"node 'find': 'retry' is not a node setting.*'retries'"):
        wf.job("find", find, region="eu").set(retry=RetryPolicy(limit=1))
    with pytest.raises(SdkError, match=r"'paralelism' is not a Workflow setting"):
        Workflow("x", paralelism=3)


def test_an_invalid_setting_value_names_the_node_and_field() -> None:
    wf = fresh()
    wf.job("find", find, region="eu").set(retries={"limit": -1})
    with pytest.raises(SdkError, match=r"node 'find': retries.limit: Input should be greater"):
        wf.build()


def test_a_node_name_is_added_once() -> None:
    wf = fresh()
    wf.job("find", find, region="eu")
    with pytest.raises(SdkError, match="node 'find' is added twice"):
        wf.job("find", find, region="us")


def test_a_job_named_by_string_is_checked_when_registered_and_passed_through_otherwise() -> None:
    wf = fresh()
    wf.job("known", "sdk-test-count", m=1)
    with pytest.raises(SdkError, match=r"node 'known': unknown argument 'm'"):
        wf.build()
    other = fresh()
    other.job("image-only", "lives-in-the-image", anything=1)
    assert other.build().spec.nodes[0].job == "lives-in-the-image"


def test_validate_is_the_compile_shoal_validate_runs() -> None:
    wf = fresh()
    wf.command("x", ["echo", "${{ nodes.ghost.phase }}"]).set(run_policy=RunPolicy.ALWAYS)
    with pytest.raises(InvalidWorkflow) as err:
        wf.validate()
    assert "node 'x'" in str(err.value)
    assert "unknown node 'ghost'" in str(err.value)


def test_a_bad_object_name_is_an_sdk_error_naming_the_workflow() -> None:
    with pytest.raises(SdkError, match=r"workflow 'Bad_Name': metadata: name: String should match"):
        Workflow("Bad_Name")


def test_synchronization_and_memoize_in_code_depend_on_what_the_key_reads() -> None:
    from shoal.sdk import Memoize, Mutex, Semaphore, Synchronization, to_dict, validate

    wf = Workflow(
        "locks",
        parameters={"day": "d1"},
        synchronization=Synchronization(mutexes=[Mutex(name="deploy")]),
    )
    price = wf.command("price", ["sh", "-c", "echo 1"], capture_stdout=True)
    wf.command("report", ["echo"]).set(
        synchronization=Synchronization(semaphores=[Semaphore(name="s", limit=2)], priority=1),
        memoize=Memoize(key=f"r-{wf.params['day']}-{price.outputs['result']}", max_age="1h"),
    )
    doc = to_dict(wf)
    report = doc["spec"]["nodes"][1]
    assert report["dependsOn"] == ["price"]
    assert report["memoize"] == {
        "key": "r-${{ params.day }}-${{ nodes.price.outputs.result }}",
        "maxAge": "1h",
    }
    assert report["synchronization"] == {"semaphores": [{"name": "s", "limit": 2}], "priority": 1}
    assert doc["spec"]["synchronization"] == {"mutexes": [{"name": "deploy"}]}
    validate(wf)
