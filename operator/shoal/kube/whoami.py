"""Who the caller is, as the API server sees them: the name recorded with a decision.

A SelfSubjectReview answers with the authenticated user's name (never a token); an API
server without it (before Kubernetes 1.28, or a refusal) leaves the kubeconfig context's
user name, which is what the caller chose to call themselves.
"""

from __future__ import annotations

from shoal.kube.api import ApiError, KubeApi

__all__ = ["REVIEW_PATH", "caller_name", "kubeconfig_user", "reviewed_name"]

REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
MAX_NAME = 253


async def caller_name(api: KubeApi, kubeconfig: str | None, context: str | None) -> str:
    """The caller's user name: the API server's word when it gives one, else kubeconfig's."""
    return await reviewed_name(api) or kubeconfig_user(kubeconfig, context)


async def reviewed_name(api: KubeApi) -> str:
    """The user name the API server authenticates `api`'s requests as ("" if it won't say)."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = await api.create(REVIEW_PATH, review)
    except ApiError as err:
        if err.status == 0:
            raise
        answer = None
    user = ((answer or {}).get("status") or {}).get("userInfo") or {}
    name = user.get("username")
    return name[:MAX_NAME] if isinstance(name, str) else ""


def kubeconfig_user(kubeconfig: str | None, context: str | None) -> str:
    """The `user` of the kubeconfig's chosen (or current) context; "" when there is none."""
    from kubernetes import config

    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except Exception:  # in a pod, or no kubeconfig: nothing to name
        return ""
    if context is not None:
        active = next((c for c in contexts or [] if c.get("name") == context), None)
    user = ((active or {}).get("context") or {}).get("user")
    return str(user)[:MAX_NAME] if user else ""
