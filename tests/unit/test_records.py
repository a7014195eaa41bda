"""The validator's records (`shoal_worker/records.py`) behave as the frozen dataclasses they
replace: read-only, equal and hashed by their compared fields, copied with `replace`, picklable."""

from __future__ import annotations

import copy
import pickle

import pytest

from shoal.core.compiled import WorkflowMeta
from shoal.core.expressions import Expression, Interpolation, compile_expression
from shoal.core.validation import Problem
from shoal.yamlread import Surprise
from shoal_worker.records import FrozenRecordError


def test_fields_cannot_be_assigned_or_deleted() -> None:
    meta = WorkflowMeta("wf")
    with pytest.raises(FrozenRecordError, match="cannot assign to field 'uid'"):
        meta.uid = "u"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del meta.name  # type: ignore[misc]
    with pytest.raises(AttributeError):
        meta.other = 1  # type: ignore[attr-defined]
    assert (meta.name, meta.namespace, meta.uid, meta.labels) == ("wf", "default", "", {})


def test_equality_and_hash_follow_the_compared_fields() -> None:
    here = Problem("bad", "a", "args", line=3, column=4)
    there = Problem("bad", "a", "args", line=9, column=1)
    assert here == there  # where a problem was found takes no part, as before
    assert hash(here) == hash(there)
    assert len({here, there, Problem("bad", "b", "args")}) == 2
    assert Surprise(1, 2, "y", True, False) != Surprise(1, 2, "y", True, True)
    assert WorkflowMeta("wf") != ("wf", "default", "", {})


def test_replace_copies_with_changes_and_keeps_the_original() -> None:
    meta = WorkflowMeta("wf", labels={"a": "b"})
    changed = meta.replace(uid="u-1")
    assert (changed.name, changed.uid, changed.labels) == ("wf", "u-1", {"a": "b"})
    assert meta.uid == ""
    problem = Problem("bad", "a").replace(line=2, column=5)
    assert problem.describe("f.yaml") == "f.yaml:2:5: node 'a': bad"


def test_records_pickle_and_copy() -> None:
    problem = Problem("bad", "a", "args", 3, 4)
    for clone in (pickle.loads(pickle.dumps(problem)), copy.copy(problem), copy.deepcopy(problem)):
        assert clone == problem
        assert (clone.line, clone.column) == (3, 4)
    interpolation = Interpolation(("x-", "y"))
    assert pickle.loads(pickle.dumps(interpolation)) == interpolation


def test_repr_names_every_field() -> None:
    assert repr(Problem("bad")) == (
        "Problem(message='bad', node=None, field=None, line=None, column=None)"
    )
    expr = compile_expression("params.name")
    assert isinstance(expr, Expression)
    assert repr(expr).startswith("Expression(source='params.name', program=")
