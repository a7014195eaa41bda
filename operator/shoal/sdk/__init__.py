"""Workflows and CronWorkflows as Python code (docs/sdk.md).

Build with `Workflow(...)`, `wf.job(name, job_function, **args)` and
`wf.command(name, argv)`; the result validates, renders to YAML, runs locally and
submits to a cluster. Only the base dependencies are imported; the cluster client is
imported when `submit` runs.
"""

from shoal.api.common import EnvVar as EnvVar
from shoal.api.common import ResourceRequirements as ResourceRequirements
from shoal.api.cron import CatchUp as CatchUp
from shoal.api.cron import ConcurrencyPolicy as ConcurrencyPolicy
from shoal.api.cron import PollTrigger as PollTrigger
from shoal.api.synchronization import Memoize as Memoize
from shoal.api.synchronization import Mutex as Mutex
from shoal.api.synchronization import Semaphore as Semaphore
from shoal.api.synchronization import Synchronization as Synchronization
from shoal.api.workflow import PodSettings as PodSettings
from shoal.api.workflow import RetryPolicy as RetryPolicy
from shoal.api.workflow import RunPolicy as RunPolicy
from shoal.sdk.builder import Params as Params
from shoal.sdk.builder import Step as Step
from shoal.sdk.builder import Workflow as Workflow
from shoal.sdk.cron import CronWorkflow as CronWorkflow
from shoal.sdk.refs import FanOut as FanOut
from shoal.sdk.refs import Ref as Ref
from shoal.sdk.refs import SdkError as SdkError
from shoal.sdk.refs import each as each
from shoal.sdk.refs import sequence as sequence
from shoal.sdk.render import parse_yaml as parse_yaml
from shoal.sdk.render import to_dict as to_dict
from shoal.sdk.render import to_yaml as to_yaml
from shoal.sdk.render import validate as validate
from shoal.sdk.run import LocalResult as LocalResult
from shoal.sdk.run import run_local as run_local
from shoal.sdk.run import submit as submit
from shoal.sdk.run import submit_async as submit_async
from shoal.sdk.templates import ClusterWorkflowTemplate as ClusterWorkflowTemplate
from shoal.sdk.templates import WorkflowTemplate as WorkflowTemplate

# The package's modules; the names above are its public API (docs/sdk.md).
__all__ = ["builder", "cron", "jobs", "refs", "render", "resource", "run", "templates"]
