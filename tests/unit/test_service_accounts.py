"""Which ServiceAccounts a Workflow's pods may run as (shoal.kube.service_accounts).

The policy is pure: a spec, a namespace and the labels of the accounts a selector must
judge go in; the refusals, each naming node, field and the allowed set, come out. Also
the operator's knowledge of its own account, and the Job's token mount.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from shoal.api.workflow import WorkflowSpec
from shoal.kube.service_accounts import (
    Selector,
    ServiceAccountPolicy,
    check,
    identity_from_token,
    needs_labels,
    operator_identity,
    uses,
)
from tests.unit.test_kube_jobs import job_for, pod_spec

OPERATOR = ("shoal", "shoal-operator")
RUNNER = {"shoal.dev/workflow-runner": "true"}


def spec(*nodes: dict[str, Any], **defaults: Any) -> WorkflowSpec:
    return WorkflowSpec.model_validate({"nodes": list(nodes), "defaults": defaults})


def refusals(
    policy: ServiceAccountPolicy,
    workflow: WorkflowSpec,
    namespace: str = "team-a",
    labels: dict[str, dict[str, str] | None] | None = None,
) -> list[str]:
    return check(policy, namespace, uses(workflow), labels or {}).problems


def test_by_default_only_the_namespaces_default_account_is_allowed() -> None:
    policy = ServiceAccountPolicy(operator=OPERATOR)
    assert refusals(policy, spec({"name": "a", "job": "j"})) == []
    assert refusals(policy, spec({"name": "a", "job": "j", "serviceAccountName": "default"})) == []
    (problem,) = refusals(
        policy,
        spec(
            {"name": "a", "job": "j"},
            {"name": "b", "job": "j", "serviceAccountName": "ci-deployer"},
        ),
    )
    assert problem == (
        'node "b" (nodes[1].serviceAccountName): ServiceAccount "ci-deployer" is not '
        'allowed; allowed: "default"; never the operator\'s own (shoal/shoal-operator)'
    )


def test_the_defaults_field_is_named_when_a_node_inherits_it() -> None:
    policy = ServiceAccountPolicy()
    problems = refusals(
        policy,
        spec(
            {"name": "a", "job": "j"},
            {"name": "b", "job": "j", "serviceAccountName": "default"},
            serviceAccountName="admin",
        ),
    )
    assert problems == [
        'node "a" (defaults.serviceAccountName): ServiceAccount "admin" is not allowed; '
        'allowed: "default"'
    ]


def test_allowed_names_are_allowed_in_every_namespace() -> None:
    policy = ServiceAccountPolicy(allowed=frozenset({"shoal-worker", "etl"}))
    workflow = spec(
        {"name": "a", "job": "j", "serviceAccountName": "etl"},
        {"name": "b", "job": "j", "serviceAccountName": "shoal-worker"},
    )
    assert refusals(policy, workflow, "team-a") == []
    assert refusals(policy, workflow, "team-b") == []


def test_the_operators_own_account_is_never_allowed_not_even_listed_or_as_default() -> None:
    listed = ServiceAccountPolicy(
        allowed=frozenset({"shoal-operator"}), selector=Selector.parse("x"), operator=OPERATOR
    )
    workflow = spec({"name": "a", "job": "j", "serviceAccountName": "shoal-operator"})
    (problem,) = refusals(listed, workflow, "shoal", {"shoal-operator": {"x": "1"}})
    assert "is the operator's own ServiceAccount" in problem
    assert needs_labels(listed, "shoal", uses(workflow)) == set()
    # The same name elsewhere is another account: the list allows it there.
    assert refusals(listed, workflow, "team-a") == []
    # An operator running as `default` (chart serviceAccount.create=false) makes its
    # namespace's `default` forbidden too, including for nodes that name none.
    as_default = ServiceAccountPolicy(operator=("shoal", "default"))
    (problem,) = refusals(as_default, spec({"name": "a", "job": "j"}), "shoal")
    assert problem.startswith('node "a" (nodes[0].serviceAccountName (unset)): ')


def test_a_selector_allows_accounts_whose_labels_match_and_only_those() -> None:
    policy = ServiceAccountPolicy(selector=Selector.parse("shoal.dev/workflow-runner=true"))
    workflow = spec(
        {"name": "a", "job": "j", "serviceAccountName": "labelled"},
        {"name": "b", "job": "j", "serviceAccountName": "plain"},
        {"name": "c", "job": "j", "serviceAccountName": "missing"},
    )
    assert needs_labels(policy, "team-a", uses(workflow)) == {"labelled", "plain", "missing"}
    problems = refusals(
        policy, workflow, labels={"labelled": RUNNER, "plain": {"team": "a"}, "missing": None}
    )
    assert problems == [
        'node "b" (nodes[1].serviceAccountName): ServiceAccount "plain" is not allowed; '
        'allowed: "default", or one labelled shoal.dev/workflow-runner=true',
        'node "c" (nodes[2].serviceAccountName): ServiceAccount "missing" does not exist '
        '(or could not be read); allowed: "default", or one labelled '
        "shoal.dev/workflow-runner=true",
    ]


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a!=1", {"a": "1"}, False),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("example.com/a=1, b", {"example.com/a": "1", "b": "x"}, True),
        ("example.com/a=1, b", {"example.com/a": "1"}, False),
    ],
)
def test_selector_terms(text: str, labels: dict[str, str], matches: bool) -> None:
    assert Selector.parse(text).matches(labels) is matches


@pytest.mark.parametrize("text", ["a in (1,2)", "=1", "a=b=c", "!a=1", "a b"])
def test_a_selector_the_operator_cannot_read_is_refused_at_start(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        Selector.parse(text)


def token(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


def test_the_operator_knows_its_account_from_the_downward_api_or_its_token(
    tmp_path: Path,
) -> None:
    file = tmp_path / "token"
    file.write_text(token({"sub": "system:serviceaccount:shoal:shoal-operator"}))
    env = {"POD_NAMESPACE": "ops", "POD_SERVICE_ACCOUNT": "op"}
    assert operator_identity(env, file) == ("ops", "op")
    assert operator_identity({}, file) == OPERATOR
    assert operator_identity({}, tmp_path / "absent") is None
    assert identity_from_token(token({"sub": "system:node:n1"})) is None
    assert identity_from_token("not-a-jwt") is None


def test_worker_pods_mount_no_api_token_unless_the_workflow_asks() -> None:
    plain = {"nodes": [{"name": "a", "job": "j"}]}
    assert pod_spec(job_for(plain))["automountServiceAccountToken"] is False
    asked = {"nodes": [{"name": "a", "job": "j", "automountServiceAccountToken": True}]}
    assert pod_spec(job_for(asked))["automountServiceAccountToken"] is True
    by_default = {
        "defaults": {"automountServiceAccountToken": True},
        "nodes": [
            {"name": "a", "job": "j"},
            {"name": "b", "job": "j", "automountServiceAccountToken": False},
        ],
    }
    assert pod_spec(job_for(by_default, "a"))["automountServiceAccountToken"] is True
    assert pod_spec(job_for(by_default, "b"))["automountServiceAccountToken"] is False
