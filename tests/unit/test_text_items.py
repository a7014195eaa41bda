"""`forEach` over a string: a JSON list a step printed (Argo's `withParam`), bounded."""

from __future__ import annotations

import pytest

from shoal.api.limits import MAX_JSON_BYTES, MAX_JSON_DEPTH
from shoal.core.text_items import TextItemsError, items_from_text


def test_a_printed_json_list_becomes_the_items() -> None:
    assert items_from_text(' [3, "b", {"c": 1}]\n') == [3, "b", {"c": 1}]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("3 4 5", "not a JSON list: '3 4 5'"),
        ('{"a": 1}', "JSON dict, not a list"),
        ("[" * (MAX_JSON_DEPTH + 2) + "]" * (MAX_JSON_DEPTH + 2), "nests deeper"),
        ("[" * 100_000, "not a JSON list"),  # the decoder's recursion is caught too
        ("[" + " " * MAX_JSON_BYTES + "]", "limit MAX_JSON_BYTES"),
    ],
)
def test_text_that_is_no_bounded_list_is_refused_saying_why(text: str, problem: str) -> None:
    with pytest.raises(TextItemsError, match=problem):
        items_from_text(text)
