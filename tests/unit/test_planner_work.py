"""The planner's work per event does not grow with the workflow: counted, not timed.

Every access the planner makes to a node (`state.nodes`) or to an active task (a node's
`tasks`) goes through a counting mapping, so the bound holds whatever the machine's load.
A planner that re-scans every node on every pass touches at least 1,000 nodes per event on
the 1,000-node chain, far past the bound.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, ValuesView
from typing import Any

from shoal.core.state import NodeState, RunState
from tests.unit.simulator import Simulator, workflow

MAX_TOUCHES_PER_EVENT = 20
"""A few passes over the one or two nodes an event concerns (12 to 15 measured; the
re-scanning planner touched 13,001 per event on the chain and up to 46 on the fan-out)."""


class Counting(dict[Any, Any]):
    """A dict that counts every value handed out: by key, by iteration, by view."""

    touches = 0

    def __getitem__(self, key: Any) -> Any:
        Counting.touches += 1
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        Counting.touches += 1
        return super().get(key, default)

    def __iter__(self) -> Iterator[Any]:
        for key in super().__iter__():
            Counting.touches += 1
            yield key

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        Counting.touches += len(self)
        return super().values()

    def items(self) -> ItemsView[Any, Any]:  # type: ignore[override]
        Counting.touches += len(self)
        return super().items()


def instrument(state: RunState) -> None:
    for ns in state.nodes.values():
        ns.tasks = Counting(ns.tasks)
    state.nodes = Counting(state.nodes)


def touches_per_event(sim: Simulator) -> list[int]:
    """Run `sim` to its end; the nodes and tasks the planner touched at each event."""
    sim.settle()  # the first pass may index the whole workflow once
    counts: list[int] = []
    while True:
        before = Counting.touches
        if not sim.step():
            return counts
        counts.append(Counting.touches - before)


def test_a_1000_node_chain_costs_the_same_per_event_as_a_short_one() -> None:
    nodes = [{"name": "n0"}] + [
        {"name": f"n{i}", "dependsOn": [f"n{i - 1}"]} for i in range(1, 1000)
    ]
    sim = Simulator(workflow(*nodes), check_index=False)
    instrument(sim.state)
    counts = touches_per_event(sim)
    assert len(counts) == 1000
    assert max(counts) <= MAX_TOUCHES_PER_EVENT, max(counts)
    assert all(ns.phase.finished for ns in sim.state.nodes.values())


def test_a_10000_item_fan_out_costs_the_same_per_item_as_a_small_one() -> None:
    node = {"name": "f", "forEach": list(range(10_000)), "itemArg": "i", "parallelism": 2}
    wf = workflow(
        {"name": "before"}, {**node, "dependsOn": ["before"]}, {"name": "after", "dependsOn": ["f"]}
    )
    sim = Simulator(wf, check_index=False, max_steps=20_000)
    instrument(sim.state)
    counts = touches_per_event(sim)
    assert len(counts) == 10_002
    assert max(counts) <= MAX_TOUCHES_PER_EVENT, max(counts)
    assert sim.state.nodes["f"].succeeded == 10_000


def test_the_counter_sees_a_full_scan() -> None:
    """The instrument itself: reading every node is counted once per node."""
    state = RunState.new([f"n{i}" for i in range(50)])
    instrument(state)
    before = Counting.touches
    done = [ns for ns in state.nodes.values() if isinstance(ns, NodeState)]
    assert len(done) == 50
    assert Counting.touches - before == 50
