"""Per-caller authorization for what the server reads with its own means (the archive,
the shared watch): the API server is asked, as the caller, whether the caller may do it.

A SelfSubjectAccessReview sent with the caller's own token is a SubjectAccessReview the
API server fills in with the identity it authenticated from that token: a token it
rejects is a 401, and the server needs no privilege of its own to ask. Answers are kept
for `TTL_SECONDS`, keyed by the SHA-256 of the token (never the token) and the verb,
resource and namespace, so a live stream or an archive page does not ask per row.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import Request

from shoal.kube.api import ApiError, KubeApi
from shoal.server.errors import ApiProblem, from_kube
from shoal.server.identity import caller_key

__all__ = ["TTL_SECONDS", "AccessCache", "Check", "access_cache", "require"]

TTL_SECONDS = 10.0
"""How long an answer is reused: a revoked RoleBinding stops showing rows this late."""
MAX_ENTRIES = 10_000
REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@dataclass(frozen=True, slots=True)
class Check:
    """One question: may the caller `verb` `resource` (`/subresource`) in `namespace`
    (`""`: in every namespace)?"""

    verb: str
    resource: str
    namespace: str
    group: str = "shoal.dev"
    subresource: str = ""

    def describe(self) -> str:
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f'in the namespace "{self.namespace}"' if self.namespace else "cluster-wide"
        return f'cannot {self.verb} resource "{what}" in API group "{self.group}" {where}'


class AccessCache:
    """Answers of the API server, reused for a few seconds; bounded (oldest dropped)."""

    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.reviews = 0
        """Reviews sent to the API server (the benchmark and tests count them)."""
        self._answers: OrderedDict[tuple[str, Check], tuple[float, bool]] = OrderedDict()

    async def allowed(self, api: KubeApi, key: str, check: Check) -> bool:
        """Whether the caller whose token hashes to `key` (`api` acts as them) may."""
        now = time.monotonic()
        cached = self._answers.get((key, check))
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = await self._review(api, check)
        self._answers[(key, check)] = (now + self.ttl, answer)
        self._answers.move_to_end((key, check))
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)
        return answer

    async def _review(self, api: KubeApi, check: Check) -> bool:
        attributes = {
            "verb": check.verb,
            "group": check.group,
            "resource": check.resource,
            "subresource": check.subresource,
            "namespace": check.namespace,
        }
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        self.reviews += 1
        try:
            answer = await api.request("POST", REVIEWS, body=body)
        except ApiError as err:
            raise from_kube(err) from None
        return bool((answer.get("status") or {}).get("allowed"))


def access_cache(request: Request) -> AccessCache:
    """The application's one cache (made on first use)."""
    cache: AccessCache | None = getattr(request.app.state, "access", None)
    if cache is None:
        cache = AccessCache()
        request.app.state.access = cache
    return cache


async def require(request: Request, api: KubeApi, check: Check) -> None:
    """A 403 naming the verb and resource unless the caller may."""
    if not await access_cache(request).allowed(api, caller_key(request), check):
        raise ApiProblem.of(403, "Forbidden", f"the caller {check.describe()}")
