"""Job names and labels (shoal.kube.naming): deterministic, distinct, valid, readable.

What relies on it: creating the same attempt twice must be a harmless 409 (same name), two
different attempts must never share a Job (different names, including across a Workflow
deleted and re-created under the same name: the uid differs), and the API server must
accept every name whatever the workflow and node are called (DNS-1123 label, ≤ 63).
"""

from __future__ import annotations

import re

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shoal.api.common import DNS_LABEL, DNS_SUBDOMAIN
from shoal.kube.naming import (
    LABEL_ATTEMPT,
    LABEL_ITEM,
    LABEL_MANAGED_BY,
    LABEL_NODE,
    LABEL_WORKFLOW,
    LABEL_WORKFLOW_UID,
    MANAGED_SELECTOR,
    MAX_NAME,
    job_name,
    label_value,
    task_labels,
    workflow_selector,
)

UID = "6f1c2a9e-3b7d-4e0a-9c1f-2d8e5b7a4c10"
OTHER_UID = "a0d3b1f2-77c4-4f5e-8a9b-0c1d2e3f4a5b"

# What the API server checks: a Job name becomes the `job-name` label value of its pods,
# so it must be a DNS-1123 label; a label value is this, at most 63 characters.
_DNS_LABEL = re.compile(DNS_LABEL)
_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

PROPERTIES = settings(max_examples=200, deadline=None)


def is_dns_label(text: str) -> bool:
    return len(text) <= MAX_NAME and _DNS_LABEL.match(text) is not None


def is_label_value(text: str) -> bool:
    return len(text) <= 63 and _LABEL_VALUE.match(text) is not None


# --- strategies --------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_ALNUM_DASH = _ALNUM + "--"  # dashes common enough to make runs of them
_SUBDOMAIN_CHARS = _ALNUM + "--.."


def _label_from(raw: bytes) -> str:
    """A DNS-1123 label spelled by `raw` (bytes draw fast; per-character text does not)."""
    chars = [_ALNUM_DASH[b % len(_ALNUM_DASH)] for b in raw]
    chars[0] = _ALNUM[raw[0] % len(_ALNUM)]
    chars[-1] = _ALNUM[raw[-1] % len(_ALNUM)]
    return "".join(chars)


def dns_labels(max_size: int = 63) -> st.SearchStrategy[str]:
    """Any DNS-1123 label up to `max_size` characters (what a node name may be)."""
    return st.binary(min_size=1, max_size=max_size).map(_label_from)


def _subdomain_from(raw: bytes) -> str:
    chars = [_SUBDOMAIN_CHARS[b % len(_SUBDOMAIN_CHARS)] for b in raw]
    for i, char in enumerate(chars):
        if char == ".":  # each dot-separated part must start and end alphanumeric
            for j in (i - 1, i + 1):
                if 0 <= j < len(chars) and chars[j] in ".-":
                    chars[j] = _ALNUM[raw[j] % len(_ALNUM)]
    for j in (0, -1):
        if chars[j] in ".-":
            chars[j] = _ALNUM[raw[j] % len(_ALNUM)]
    return "".join(chars)


def workflow_names() -> st.SearchStrategy[str]:
    """Any DNS-1123 subdomain up to 253 characters (what a Workflow's name may be)."""
    return st.binary(min_size=1, max_size=253).map(_subdomain_from)


indexes = st.integers(0, 1_000_000)
attempts = st.integers(1, 110)
uids = st.uuids().map(str)


# --- job_name ----------------------------------------------------------------------------


@PROPERTIES
@given(workflow_names(), uids, dns_labels(), indexes, attempts)
def test_job_names_are_valid_dns_labels_of_at_most_63_characters(
    workflow: str, uid: str, node: str, index: int, attempt: int
) -> None:
    assert _DNS_SUBDOMAIN.match(workflow)
    assert len(workflow) <= 253
    name = job_name(workflow, uid, node, index, attempt)
    assert is_dns_label(name), name


@PROPERTIES
@given(workflow_names(), uids, dns_labels(), indexes, attempts)
def test_job_names_are_deterministic(
    workflow: str, uid: str, node: str, index: int, attempt: int
) -> None:
    first = job_name(workflow, uid, node, index, attempt)
    assert job_name(workflow, uid, node, index, attempt) == first


@PROPERTIES
@given(
    workflow_names(),
    uids,
    dns_labels(),
    indexes,
    attempts,
    uids,
    dns_labels(),
    st.integers(1, 1000),
    st.integers(1, 10),
)
def test_job_names_differ_when_uid_node_item_or_attempt_differ(
    workflow: str,
    uid: str,
    node: str,
    index: int,
    attempt: int,
    other_uid: str,
    other_node: str,
    index_delta: int,
    attempt_delta: int,
) -> None:
    assume(other_uid != uid and other_node != node)
    base = job_name(workflow, uid, node, index, attempt)
    variants = {
        "uid": job_name(workflow, other_uid, node, index, attempt),
        "node": job_name(workflow, uid, other_node, index, attempt),
        "index": job_name(workflow, uid, node, index + index_delta, attempt),
        "attempt": job_name(workflow, uid, node, index, attempt + attempt_delta),
    }
    for what, name in variants.items():
        assert name != base, f"changing the {what} kept the name {name}"


@PROPERTIES
@given(workflow_names(), uids, dns_labels(), indexes, attempts)
def test_job_names_stay_readable(
    workflow: str, uid: str, node: str, index: int, attempt: int
) -> None:
    name = job_name(workflow, uid, node, index, attempt)
    # A recognisable prefix of the workflow name (dots become dashes in a label) ...
    assert name.startswith(workflow[:16].replace(".", "-")), name
    # ... then a prefix of the node name, the item and the attempt, then the hash.
    assert node[:16] in name, name
    assert re.search(rf"-{index}-{attempt}-[0-9a-f]{{8}}$", name), name


def test_a_short_name_keeps_workflow_and_node_whole() -> None:
    name = job_name("catalog-integration", UID, "markets", 0, 1)
    assert re.fullmatch(r"catalog-integration-markets-0-1-[0-9a-f]{8}", name), name


def test_the_longest_names_are_shortened_to_exactly_the_limit_or_less() -> None:
    workflow = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters
    node = "n" * 63
    assert len(workflow) == 253
    name = job_name(workflow, UID, node, 99_999, 7)
    assert is_dns_label(name)
    assert len(name) <= 63
    assert name.startswith("aaaaaaaaaaaaaaaa")
    assert "nnnnnnnnnnnnnnnn" in name
    assert "-99999-7-" in name


def test_a_recreated_workflow_never_adopts_its_predecessors_jobs() -> None:
    """Same name, same node, same attempt, new uid: a different Job name."""
    old = job_name("nightly", UID, "load", 0, 1)
    new = job_name("nightly", OTHER_UID, "load", 0, 1)
    assert old != new
    assert old.rsplit("-", 1)[0] == new.rsplit("-", 1)[0]  # only the hash tells them apart


def test_names_that_differ_only_beyond_the_cut_still_differ() -> None:
    """Long node names sharing a prefix are told apart by the hash, not the readable part."""
    prefix = "x" * 60
    first = job_name("w" * 200, UID, prefix + "aaa", 0, 1)
    second = job_name("w" * 200, UID, prefix + "bbb", 0, 1)
    assert first != second
    assert first[:-8] == second[:-8]


# --- labels -------------------------------------------------------------------------------


@PROPERTIES
@given(st.text(max_size=300))
def test_label_value_always_yields_a_valid_label_value(text: str) -> None:
    assert is_label_value(label_value(text)), repr(label_value(text))


@PROPERTIES
@given(st.text(max_size=300))
def test_label_value_is_deterministic(text: str) -> None:
    assert label_value(text) == label_value(text)


@PROPERTIES
@given(workflow_names())
def test_label_value_keeps_a_fitting_name_as_it_is_and_distinguishes_long_ones(
    workflow: str,
) -> None:
    value = label_value(workflow)
    if len(workflow) <= 63:
        assert value == workflow
    else:
        assert len(value) <= 63
        assert value != label_value(workflow + "x")


def test_label_value_of_text_without_any_valid_character() -> None:
    for text in ("", "-", "...", "___", "ü", "--é--", " "):
        value = label_value(text)
        assert is_label_value(value), (text, value)
    assert label_value("") == ""
    assert label_value("...") != label_value("___")


def test_label_value_replaces_invalid_characters_and_adds_a_hash() -> None:
    value = label_value("team/etl run#1")
    assert is_label_value(value)
    assert value.startswith("team-etl-run-1-")


@PROPERTIES
@given(workflow_names(), uids, dns_labels(), indexes, attempts)
def test_task_labels_are_valid_and_route_back_to_the_attempt(
    workflow: str, uid: str, node: str, index: int, attempt: int
) -> None:
    labels = task_labels(workflow, uid, node, index, attempt)
    assert all(is_label_value(v) for v in labels.values()), labels
    assert labels[LABEL_MANAGED_BY] == "shoal"
    assert labels[LABEL_WORKFLOW] == label_value(workflow)
    assert labels[LABEL_WORKFLOW_UID] == uid
    assert labels[LABEL_NODE] == node
    assert (int(labels[LABEL_ITEM]), int(labels[LABEL_ATTEMPT])) == (index, attempt)


def test_selectors_select_what_task_labels_set() -> None:
    labels = task_labels("wf", UID, "a", 0, 1)

    def matches(selector: str) -> bool:
        pairs = (term.split("=", 1) for term in selector.split(","))
        return all(labels.get(key) == value for key, value in pairs)

    assert matches(workflow_selector(UID))
    assert matches(MANAGED_SELECTOR)
    assert not matches(workflow_selector(OTHER_UID))
