"""Shared building blocks of the API models: camelCase aliases, Kubernetes-shaped sub-objects."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shoal.api.limits import MAX_PROPERTIES, MAX_STRING_LENGTH, MAX_TEXT_LENGTH

API_GROUP = "shoal.dev"
API_VERSION = "v1alpha1"
GROUP_VERSION: Final = "shoal.dev/v1alpha1"

# DNS-1123 label: what Kubernetes accepts in a label value and a Job name segment.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# DNS-1123 subdomain: what Kubernetes accepts as an object name.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Quantity = Annotated[
    int | str,
    Field(description="A Kubernetes quantity such as `100m`, `1`, `128Mi`."),
]


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields rejected.

    Rejecting unknown fields is what turns a typo such as `dependOn` into an error that
    names the field instead of a silently ignored key.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        # Validators are built at a model's first use, not at import: a command loads
        # every API module but validates one or two kinds (`shoal validate` start-up).
        # The docstring under each field is its description; the generated references
        # read it (`shoal.api.field_docs`): parsing it here cost every command's start.
        defer_build=True,
    )

    def dump(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


STATUS_CONFIG = ConfigDict(
    alias_generator=to_camel,
    populate_by_name=True,
    extra="ignore",
    defer_build=True,
)
"""Status models ignore unknown fields: a status written by a newer operator must still
load after a downgrade (the CRD preserves unknown status fields for the same reason)."""


class ObjectMeta(ApiModel):
    """The part of Kubernetes' ObjectMeta that a manifest sets; the rest is ignored."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, max_length=253, pattern=DNS_SUBDOMAIN)
    """Object name. A DNS subdomain."""
    generate_name: str | None = None
    """Prefix for a server-generated name (`kubectl create`)."""
    namespace: str | None = None
    """Namespace; the operator's or the CLI's default when unset."""
    uid: str | None = None
    """Set by the API server."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels, copied to every Job the workflow creates."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations."""


class ResourceRequirements(ApiModel):
    """CPU and memory for one pod, as in a Kubernetes container spec."""

    requests: dict[str, Quantity] = Field(default_factory=dict, max_length=MAX_PROPERTIES)
    """Resources the scheduler reserves, for example `{cpu: 100m, memory: 128Mi}`."""
    limits: dict[str, Quantity] = Field(default_factory=dict, max_length=MAX_PROPERTIES)
    """Hard limits; a pod that exceeds its memory limit ends OOMKilled."""


class KeyRef(ApiModel):
    """A key in a Secret or ConfigMap."""

    name: str = Field(max_length=253)
    """Secret or ConfigMap name, in the workflow's namespace."""
    key: str = Field(max_length=253)
    """Key within it."""
    optional: bool | None = None
    """Whether a missing key is tolerated."""


class FieldRef(ApiModel):
    """A field of the pod, as in the downward API."""

    field_path: str = Field(max_length=MAX_STRING_LENGTH)
    """For example `metadata.name` or `spec.nodeName`."""


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from."""

    secret_key_ref: KeyRef | None = None
    """A Secret key. Its value never appears in status, logs or events."""
    config_map_key_ref: KeyRef | None = None
    """A ConfigMap key."""
    field_ref: FieldRef | None = None
    """A pod field."""


class EnvVar(ApiModel):
    """An environment variable of the node's pod."""

    name: str = Field(
        min_length=1, max_length=MAX_STRING_LENGTH, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
    )
    """Variable name."""
    value: str | None = Field(None, max_length=MAX_TEXT_LENGTH)
    """Literal value; may use `${{ }}` templates."""
    value_from: EnvVarSource | None = None
    """A reference instead of a literal value."""


class Toleration(ApiModel):
    """A Kubernetes toleration."""

    key: str | None = Field(None, max_length=MAX_STRING_LENGTH)
    operator: str | None = Field(None, pattern=r"^(Exists|Equal)$")
    value: str | None = Field(None, max_length=MAX_STRING_LENGTH)
    effect: str | None = Field(None, pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)$")
    toleration_seconds: int | None = None
