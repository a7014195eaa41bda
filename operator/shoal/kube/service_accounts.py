"""Which ServiceAccounts a Workflow's pods may run as (the policy itself is pure).

A pod runs with every permission its ServiceAccount has, and anyone who may create a
Workflow in a namespace could otherwise name any ServiceAccount there, including the
operator's own. So a node may run only as its namespace's `default` ServiceAccount, as
one the administrator allowed by name (`--allowed-service-accounts`), or as one that
carries labels the administrator chose (`--service-account-selector`), and never as the
operator's own ServiceAccount, whatever the rest of the policy says.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shoal.api.workflow import WorkflowSpec

DEFAULT = "default"
_KEY = r"(?:[a-z0-9A-Z.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_TERM = re.compile(
    rf"^\s*(?P<neg>!)?\s*(?P<key>{_KEY})\s*(?:(?P<op>==|=|!=)\s*(?P<val>{_VALUE}))?\s*$"
)


@dataclass(frozen=True, slots=True)
class Selector:
    """An equality-based label selector (`k=v`, `k!=v`, `k`, `!k`, comma-separated)."""

    text: str
    terms: tuple[tuple[str, str, str], ...]
    """(operator, key, value) with operator one of `=`, `!=`, `exists`, `!exists`."""

    @classmethod
    def parse(cls, text: str) -> Selector:
        terms: list[tuple[str, str, str]] = []
        for part in text.split(","):
            match = _TERM.match(part)
            if match is None or (match["neg"] and match["op"]):
                raise ValueError(
                    f"service account selector {text!r}: cannot read {part.strip()!r} "
                    "(use key=value, key!=value, key or !key, comma-separated)"
                )
            op = match["op"]
            if op is None:
                terms.append(("!exists" if match["neg"] else "exists", match["key"], ""))
            else:
                terms.append(("!=" if op == "!=" else "=", match["key"], match["val"] or ""))
        return cls(text.strip(), tuple(terms))

    def matches(self, labels: Mapping[str, str]) -> bool:
        for op, key, value in self.terms:
            if op == "=" and labels.get(key) != value:
                return False
            if op == "!=" and labels.get(key) == value:
                return False
            if op == "exists" and key not in labels:
                return False
            if op == "!exists" and key in labels:
                return False
        return True


@dataclass(frozen=True, slots=True)
class ServiceAccountPolicy:
    """The administrator's choice; the default allows only each namespace's `default`."""

    allowed: frozenset[str] = frozenset()
    """Names allowed in every watched namespace, besides `default`."""
    selector: Selector | None = None
    """ServiceAccounts whose labels match are allowed too."""
    operator: tuple[str, str] | None = None
    """(namespace, name) of the operator's own ServiceAccount: never allowed."""

    def describe(self) -> str:
        names = ", ".join(f'"{n}"' for n in sorted({DEFAULT, *self.allowed}))
        text = f"allowed: {names}"
        if self.selector is not None:
            text += f", or one labelled {self.selector.text}"
        if self.operator is not None:
            text += f"; never the operator's own ({self.operator[0]}/{self.operator[1]})"
        return text


@dataclass(frozen=True, slots=True)
class Use:
    """One node's ServiceAccount and the field it comes from."""

    node: str
    where: str
    """The field it comes from, as written in the manifest."""
    name: str


@dataclass(frozen=True, slots=True)
class Verdict:
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def uses(spec: WorkflowSpec) -> list[Use]:
    """The ServiceAccount each node runs as (its own, else the defaults', else `default`)."""
    found: list[Use] = []
    default = spec.defaults.service_account_name
    for i, node in enumerate(spec.nodes):
        if node.service_account_name:
            found.append(
                Use(node.name, f"nodes[{i}].serviceAccountName", node.service_account_name)
            )
        elif default:
            found.append(Use(node.name, "defaults.serviceAccountName", default))
        else:
            found.append(Use(node.name, f"nodes[{i}].serviceAccountName (unset)", DEFAULT))
    return found


def needs_labels(policy: ServiceAccountPolicy, namespace: str, found: list[Use]) -> set[str]:
    """Names whose labels decide (the selector applies and nothing else allows them)."""
    if policy.selector is None:
        return set()
    return {
        use.name
        for use in found
        if use.name != DEFAULT
        and use.name not in policy.allowed
        and policy.operator != (namespace, use.name)
    }


def _allowed(policy: ServiceAccountPolicy, name: str, labels: Mapping[str, str] | None) -> bool:
    if name == DEFAULT or name in policy.allowed:
        return True
    return policy.selector is not None and labels is not None and policy.selector.matches(labels)


def check(
    policy: ServiceAccountPolicy,
    namespace: str,
    found: list[Use],
    labels: Mapping[str, Mapping[str, str] | None],
) -> Verdict:
    """Each node whose ServiceAccount the policy refuses, with the field and allowed set.

    `labels` holds the labels of the names `needs_labels` asked for (None: no such
    ServiceAccount).
    """
    problems: list[str] = []
    for use in found:
        known = labels.get(use.name)
        if policy.operator == (namespace, use.name):
            why = "is the operator's own ServiceAccount"
        elif _allowed(policy, use.name, known):
            continue
        elif policy.selector is not None and known is None:
            why = "does not exist (or could not be read)"
        else:
            why = "is not allowed"
        problems.append(
            f'node "{use.node}" ({use.where}): ServiceAccount "{use.name}" {why}; '
            f"{policy.describe()}"
        )
    return Verdict(problems)


def identity_from_token(token: str) -> tuple[str, str] | None:
    """(namespace, name) from a ServiceAccount token's `sub` claim (not verified: it is our
    own token, read from our own pod's filesystem)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    prefix = "system:serviceaccount:"
    if not isinstance(sub, str) or not sub.startswith(prefix):
        return None
    namespace, _, name = sub.removeprefix(prefix).partition(":")
    return (namespace, name) if namespace and name else None


def operator_identity(env: Mapping[str, str], token_file: Path) -> tuple[str, str] | None:
    """The operator's own ServiceAccount: from the downward API (POD_NAMESPACE,
    POD_SERVICE_ACCOUNT), else from its in-cluster token; None outside a pod."""
    namespace, name = env.get("POD_NAMESPACE", ""), env.get("POD_SERVICE_ACCOUNT", "")
    if namespace and name:
        return (namespace, name)
    try:
        return identity_from_token(token_file.read_text())
    except OSError:
        return None
