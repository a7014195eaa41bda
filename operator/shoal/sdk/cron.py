"""`CronWorkflow` in code: a schedule or trigger around a Workflow built with the SDK."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shoal.api.common import ObjectMeta
from shoal.api.cron import CronWorkflow as CronWorkflowModel
from shoal.api.cron import CronWorkflowSpec
from shoal.sdk.builder import Workflow, model_errors
from shoal.sdk.refs import SdkError, templated
from shoal.sdk.resource import Resource

__all__ = ["CronWorkflow"]


class CronWorkflow(Resource):
    """Stamps out runs of `workflow` (its nodes, image, parameters and limits; its name and
    metadata are the CronWorkflow's)."""

    def __init__(
        self,
        name: str,
        workflow: Workflow,
        /,
        *,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
        **trigger: Any,
    ) -> None:
        """`trigger` takes the CronWorkflowSpec fields by Python name (`schedule=`,
        `timezone=`, `concurrency_policy=`, `catch_up=`, `poll=`, `after=`...)."""
        for key in trigger:
            if key in ("workflow_spec", "parameters") or key not in CronWorkflowSpec.model_fields:
                allowed = sorted(set(CronWorkflowSpec.model_fields) - {"workflow_spec"})
                raise SdkError(f"{key!r} is not a CronWorkflow setting; settings: {allowed}")
        try:
            self.metadata = ObjectMeta(
                name=name, namespace=namespace, labels=labels or {}, annotations=annotations or {}
            )
        except ValidationError as err:
            raise SdkError(f"cronworkflow {name!r}: metadata: {model_errors(err)}") from None
        self.workflow = workflow
        self.parameters = dict(parameters or {})
        self._trigger = trigger

    @property
    def job_functions(self) -> list[Any]:
        """The job functions of the stamped-out workflow."""
        return self.workflow.job_functions

    def build(self) -> CronWorkflowModel:
        """The API model; SdkError names the field of the first problem."""
        spec = self.workflow.spec()
        try:
            cron_spec = CronWorkflowSpec.model_validate(
                {**templated(self._trigger), "parameters": self.parameters, "workflow_spec": spec}
            )
            return CronWorkflowModel(metadata=self.metadata, spec=cron_spec)
        except ValidationError as err:
            raise SdkError(f"cronworkflow {self.metadata.name!r}: {model_errors(err)}") from None
