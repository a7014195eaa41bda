"""`withSequence`: the items it yields, the errors validation reports, and the planner's fan-out."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shoal.api.limits import MAX_FAN_OUT_ITEMS
from shoal.api.workflow import NodePhase
from shoal.core import sequence as sequence_module
from shoal.core.decisions import ExpandNode, FinishNode
from shoal.core.sequence import SequenceError, sequence_items
from shoal.core.validation import InvalidWorkflow
from tests.unit.simulator import Simulator, ok, workflow

# --- items --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "items"),
    [
        ({"count": 3}, [0, 1, 2]),
        ({"count": 2, "start": 5}, [5, 6]),
        ({"start": 1, "end": 4}, [1, 2, 3, 4]),
        ({"start": 3, "end": 1}, [3, 2, 1]),
        ({"end": 0}, [0]),
        ({"count": "4", "start": " -1 "}, [-1, 0, 1, 2]),
        ({"count": 0}, []),
        ({"count": 3, "format": "%02d"}, ["00", "01", "02"]),
        (
            {"start": 9, "end": 11, "format": "shard-%3d (100%%)"},
            [f"shard-{n:3d} (100%)" for n in (9, 10, 11)],
        ),
    ],
)
def test_a_sequence_yields_argo_s_items(bounds: dict[str, Any], items: list[Any]) -> None:
    assert sequence_items(bounds) == items


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({}, "count: set count or end"),
        ({"count": 2, "end": 4}, "count: set either count or end, not both"),
        ({"count": -1}, "count: must not be negative, got -1"),
        ({"count": "three"}, "count: must be an integer, got 'three'"),
        ({"end": 2.5}, "end: must be an integer, got 2.5"),
        ({"start": True, "end": 2}, "start: must be an integer, got True"),
        ({"count": 2, "format": "%s"}, "format: '%s' must hold one %d"),
        ({"count": 2, "format": "%x"}, "format: '%x' must hold one %d"),
        ({"count": 2, "format": "%d-%d"}, "format: '%d-%d' must hold one %d"),
        ({"count": 2, "format": "%-3d"}, "format: '%-3d' must hold one %d"),
        ({"count": 2, "format": 7}, "format: must be a string, got 7"),
    ],
)
def test_a_bad_sequence_names_the_field(bounds: dict[str, Any], message: str) -> None:
    with pytest.raises(SequenceError) as info:
        sequence_items(bounds)
    assert str(info.value).startswith(message)


def test_a_sequence_above_the_limit_is_refused_before_any_item_is_made() -> None:
    """`count: 10**12` from a parameter must fail at once, not fill memory."""
    with pytest.raises(SequenceError, match=f"above the limit of {MAX_FAN_OUT_ITEMS}"):
        sequence_items({"count": 10**12})
    with pytest.raises(SequenceError, match="yields 1000001 items"):
        sequence_items({"start": MAX_FAN_OUT_ITEMS, "end": 0})
    assert len(sequence_items({"count": MAX_FAN_OUT_ITEMS})) == MAX_FAN_OUT_ITEMS


# --- validation ---------------------------------------------------------------------------


def problems(*nodes: dict[str, Any], **spec: Any) -> list[tuple[str | None, str | None, str]]:
    with pytest.raises(InvalidWorkflow) as info:
        workflow(*nodes, **spec)
    return [(p.node, p.field, p.message) for p in info.value.problems]


def test_a_constant_sequence_compiles_to_its_items() -> None:
    wf = workflow(
        {"name": "f", "withSequence": {"start": 2, "end": 0, "format": "%02d"}, "itemArg": "n"}
    )
    assert wf.nodes["f"].fan_out
    assert wf.nodes["f"].for_each == ["02", "01", "00"]
    assert wf.nodes["f"].sequence is None


def test_for_each_and_with_sequence_together_are_refused() -> None:
    node = {"name": "f", "forEach": [1], "withSequence": {"count": 2}, "itemArg": "n"}
    assert problems(node) == [("f", "withSequence", "set either forEach or withSequence, not both")]


@pytest.mark.parametrize(
    ("sequence", "message"),
    [
        ({"count": 2, "format": "%5s"}, "format: '%5s' must hold one %d"),
        ({"count": "${{ params.n }}", "format": "%.2f"}, "format: '%.2f' must hold one %d"),
        ({"count": 0}, "is empty: the node would never run a pod"),
        ({"start": 1}, "count: set count or end"),
        (
            {"count": MAX_FAN_OUT_ITEMS + 1},
            f"yields {MAX_FAN_OUT_ITEMS + 1} items, above the limit",
        ),
    ],
)
def test_a_bad_sequence_is_reported_on_its_field(sequence: dict[str, Any], message: str) -> None:
    [(node, field, text)] = problems(
        {"name": "f", "withSequence": sequence, "itemArg": "n"}, parameters={"n": 2}
    )
    assert (node, field) == ("f", "withSequence")
    assert text.startswith(message)


def test_sequence_templates_may_read_only_ancestors_and_not_the_item() -> None:
    found = problems(
        {"name": "a"},
        {
            "name": "f",
            "withSequence": {"count": "${{ nodes.a.outputs.n }}", "end": "${{ item }}"},
            "itemArg": "n",
        },
    )
    assert [(node, field) for node, field, _ in found] == [("f", "withSequence")] * 2
    assert any("'a'" in text for _, _, text in found)
    assert any("item" in text for _, _, text in found)


def test_a_sequence_node_must_pass_its_item_and_may_set_item_arg_and_parallelism() -> None:
    found = problems({"name": "f", "withSequence": {"count": 2}})
    assert found == [
        (
            "f",
            "withSequence",
            "the fan-out never passes its item to the job: set itemArg or use ${{ item }} in args",
        )
    ]
    wf = workflow({"name": "f", "withSequence": {"count": 2}, "itemArg": "n", "parallelism": 1})
    assert wf.nodes["f"].parallelism == 1
    with pytest.raises(ValidationError, match="needs `forEach` or `withSequence`"):
        workflow({"name": "f", "itemArg": "n"})


# --- planner ------------------------------------------------------------------------------


def test_a_sequence_from_a_parameter_fans_out_with_item_arg_and_item() -> None:
    wf = workflow(
        {
            "name": "f",
            "withSequence": {"count": "${{ params.n }}", "start": 1, "format": "p%d"},
            "itemArg": "part",
            "args": {"index": "${{ itemIndex }}", "label": "${{ item }}!"},
        },
        parameters={"n": 3},
    )
    sim = Simulator(wf)
    sim.run()
    assert sim.decisions(ExpandNode) == [ExpandNode("f", ["p1", "p2", "p3"])]
    assert [s.args for s in sim.started("f")] == [
        {"index": i, "label": f"p{i + 1}!", "part": f"p{i + 1}"} for i in range(3)
    ]
    assert sim.state.nodes["f"].phase is NodePhase.SUCCEEDED


def fan_out_after_a(n: Any) -> Simulator:
    wf = workflow(
        {"name": "a"},
        {
            "name": "f",
            "dependsOn": ["a"],
            "withSequence": {"end": "${{ nodes.a.outputs.n }}"},
            "itemArg": "i",
        },
    )
    sim = Simulator(wf, {("a", 0): ok(n=n)})
    sim.run()
    return sim


def test_a_sequence_from_an_upstream_output_counts_down_to_its_end() -> None:
    sim = fan_out_after_a(-2)
    assert [s.args for s in sim.started("f")] == [{"i": 0}, {"i": -1}, {"i": -2}]


def test_a_sequence_over_the_limit_at_run_time_fails_the_node_naming_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sequence_module, "MAX_FAN_OUT_ITEMS", 5)
    sim = fan_out_after_a(5)
    assert sim.started("f") == []
    [finish] = [d for d in sim.decisions(FinishNode) if d.node == "f"]
    assert finish.phase is NodePhase.FAILED
    assert (
        finish.message == "withSequence: yields 6 items, above the limit of 5 (MAX_FAN_OUT_ITEMS, "
        "docs/security.md)"
    )


def test_a_sequence_bound_that_is_no_integer_fails_the_node() -> None:
    sim = fan_out_after_a("many")
    [finish] = [d for d in sim.decisions(FinishNode) if d.node == "f"]
    assert (finish.phase, finish.message) == (
        NodePhase.FAILED,
        "withSequence: end: must be an integer, got 'many'",
    )
