"""`shoal_worker.records.Record` classes behave as the slotted dataclasses they replace
(decisions, events, protocol messages, store settings): what the planner's tests compare,
what the executors hash, pickle and copy, and what a repr must keep hidden."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
from typing import Any

import pytest

from shoal.core.decisions import StartTask
from shoal.core.locks import LockRequest, LockTable, with_time
from shoal.core.state import NodeState, TaskFinished
from shoal_worker.protocol import OutputMessage, ResultMessage
from shoal_worker.records import FrozenRecordError, Record, field, record_fields
from shoal_worker.refs import ArtifactRef
from shoal_worker.store_settings import StoreSettings, StoreSettingsError


class Point(Record):
    """The same fields and options as `DataPoint`, to compare with dataclasses."""

    name: str
    x: float
    tags: list[str] = field(default_factory=list)
    note: str = field(default="", compare=False)
    secret: str | None = field(default=None, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class DataPoint:
    name: str
    x: float
    tags: list[str] = dataclasses.field(default_factory=list)
    note: str = dataclasses.field(default="", compare=False)
    secret: str | None = dataclasses.field(default=None, repr=False)


class Tag(Record):
    name: str
    seen: int = field(default=0, compare=False)


@dataclasses.dataclass(frozen=True, slots=True)
class DataTag:
    name: str
    seen: int = dataclasses.field(default=0, compare=False)


class Counter(Record, frozen=False):
    start: int
    seen: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.seen = [self.start]


def test_repr_equality_and_hash_match_a_dataclass_with_the_same_fields() -> None:
    args: list[tuple[Any, ...]] = [("a", 1.0), ("a", 1.0, ["t"], "n", "s"), ("b", math.nan)]
    for one in args:
        record, data = Point(*one), DataPoint(*one)
        assert repr(record) == repr(data).replace("DataPoint", "Point")
        for other in args:
            assert (Point(*one) == Point(*other)) == (DataPoint(*one) == DataPoint(*other))
    nan = math.nan  # tuples compare by identity first: the same NaN is equal, as before
    assert Point("n", nan) == Point("n", nan)
    assert Point("a", 1.0, note="x") == Point("a", 1.0, note="y")  # compare=False
    assert Point("a", 1.0) != DataPoint("a", 1.0)
    tags = {Tag("a", seen=1), Tag("a", seen=2), Tag("b")}
    assert len(tags) == 2  # frozen records hash by their compared fields
    assert hash(Tag("a", seen=1)) == hash(DataTag("a", seen=2)) == hash(("a",))


def test_a_repr_leaves_out_what_it_must_not_show() -> None:
    settings = StoreSettings("s3://bucket", access_key_id="AKIA-ID", secret_access_key="SECRET")
    assert "SECRET" not in repr(settings)
    assert "AKIA-ID" not in repr(settings)
    assert repr(settings).startswith("StoreSettings(url='s3://bucket', endpoint=None")
    assert "secret" not in repr(Point("a", 1.0, secret="secret"))


def test_frozen_records_refuse_assignment_and_mutable_ones_are_unhashable() -> None:
    task = StartTask("n", 0, 1)
    with pytest.raises(FrozenRecordError, match="cannot assign to field 'node'"):
        task.node = "m"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        task.other = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        del task.index  # type: ignore[misc]
    state = NodeState()
    state.phase = state.phase  # mutable records assign as dataclasses do
    with pytest.raises(TypeError, match="unhashable"):
        hash(state)
    with pytest.raises(TypeError, match="unhashable"):
        hash(LockTable())


def test_defaults_factories_init_false_and_post_init() -> None:
    first, second = StartTask("n", 0, 1), StartTask("n", 1, 1)
    assert first.env == {}
    assert first.env is not second.env  # a fresh dict each
    assert (first.item, first.command, first.timeout_seconds) == (None, None, None)
    counter = Counter(3)
    assert counter.seen == [3]
    assert Counter(3).seen is not counter.seen
    with pytest.raises(TypeError):
        Counter(3, [1])  # type: ignore[call-arg]  # an init=False field is not a parameter
    with pytest.raises(TypeError):
        StartTask("n")  # type: ignore[call-arg]
    # settings are checked on construction, as their __post_init__ did
    with pytest.raises(StoreSettingsError, match="give both or neither"):
        StoreSettings("s3://bucket", access_key_id="id")


def test_replace_pickle_and_copy_keep_every_field() -> None:
    finished = TaskFinished("n", 2, 1, True, 5.0, outputs={"a": [1]}, exit_code=0)
    assert finished.replace(succeeded=False).succeeded is False
    assert finished.succeeded is True
    assert with_time(LockRequest("h", "wf", {"m": 1}), 9.5).requested_at == 9.5
    counter = Counter(4)
    counter.seen.append(5)
    records: list[Any] = [finished, ArtifactRef("k", 3, "0" * 64), counter, Point("a", 1.0)]
    for record in records:
        for clone in (pickle.loads(pickle.dumps(record)), copy.copy(record), copy.deepcopy(record)):
            assert type(clone) is type(record)
            fields = record_fields(record)
            assert [getattr(clone, f) for f in fields] == [getattr(record, f) for f in fields]
    assert pickle.loads(pickle.dumps(counter)).seen == [4, 5]  # not rebuilt by __post_init__
    half = Counter.__new__(Counter)  # a field not assigned yet stays unassigned in a copy
    assert not hasattr(copy.copy(half), "start")


def test_protocol_messages_keep_their_fields_and_match_args() -> None:
    assert record_fields(OutputMessage)[:2] == ("key", "value")
    message = ResultMessage("succeeded", outputs={"a": 1})
    match message:
        case ResultMessage(outputs={"a": value}):
            assert value == 1
        case _:
            pytest.fail("a record must match a class pattern")
    assert StartTask.__match_args__[:3] == ("node", "index", "attempt")


def test_a_mutable_default_must_use_a_factory() -> None:
    with pytest.raises(ValueError, match=r"Bad\.items: a mutable default needs default_factory"):

        class Bad(Record):
            items: list[int] = []

    with pytest.raises(TypeError, match=r"Late\.b: a field without a default follows a default"):

        class Late(Record):
            a: int = 0
            b: int  # type: ignore[misc]


def test_slots_and_frozenness_come_from_the_record_and_its_bases() -> None:
    with pytest.raises(TypeError, match="a record's slots are its annotated fields"):

        class Slotted(Record):
            __slots__ = ("a",)

    with pytest.raises(TypeError, match="all frozen or all mutable"):

        class Frozen(Counter):  # Counter is mutable
            extra: int = 0

    class Labelled(Tag):
        label: str = ""

    labelled = Labelled("a", label="x")
    assert record_fields(labelled) == ("name", "seen", "label")
    assert repr(labelled).endswith(".<locals>.Labelled(name='a', seen=0, label='x')")  # qualname
    with pytest.raises(FrozenRecordError):
        labelled.label = "y"  # type: ignore[misc]


def test_the_generic_and_the_generated_init_build_and_refuse_alike() -> None:
    """A class's first `GENERATE_AFTER` constructions bind arguments generically, later
    ones run its generated `__init__`: the same calls give the same records and errors."""
    from shoal_worker import records

    def fresh() -> tuple[type[Any], type[Any]]:
        class P(Record):
            name: str
            x: float = 0.0
            tags: list[str] = field(default_factory=list)

        class C(Record, frozen=False):
            start: int
            seen: list[int] = field(init=False)

            def __post_init__(self) -> None:
                self.seen = [self.start]

        return P, C

    def outcomes(p: type[Any], c: type[Any]) -> list[object]:
        seen: list[object] = []
        calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
            (p, ("a",), {}),
            (p, ("a", 2.0), {"tags": ["t"]}),
            (p, (), {"name": "b", "x": 1.5}),
            (c, (3,), {}),
            (p, (), {}),  # missing name
            (p, ("a", 1.0, [], "extra"), {}),  # too many
            (p, ("a",), {"name": "again"}),  # repeated
            (p, ("a",), {"unknown": 1}),
            (c, (3,), {"seen": [1]}),  # not an init field
        ]
        for cls, args, kwargs in calls:
            try:
                made = cls(*args, **kwargs)
                seen.append((repr(made), getattr(made, "seen", None)))
            except TypeError:
                seen.append(TypeError)
        return seen

    generic = outcomes(*fresh())
    p, c = fresh()
    for _ in range(records.GENERATE_AFTER):  # past the threshold: the generated __init__
        p("warm")
        c(0)
    assert p.__init__.__qualname__.endswith("P.__init__")  # the generated one is installed
    assert outcomes(p, c) == generic
    assert repr(generic[0]).endswith("P(name='a', x=0.0, tags=[])\", None)")
    assert repr(generic[3]).endswith("C(start=3, seen=[3])', [3])")
    assert generic[4:] == [TypeError] * 5
