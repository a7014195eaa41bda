"""Every bound Shoal puts on user input, stated once.

The CRD generator (`shoal.api.crd`, through the models' `Field`s), the operator's and the
CLI's validation (`shoal.core.validation`), the watch decoder (`shoal.kube.safejson`) and
the expression evaluator (`shoal.core.expressions`) all read these numbers, so the limits
a user sees at `kubectl apply`, in `shoal validate` and in docs/security.md never drift.
The defaults sit far above what real workflows use (the scale tests run 1,000 nodes and
100,000 fan-out items; fan-out items are data at run time, not spec nodes).
"""

from __future__ import annotations

TYPE_CHECKING = False  # `typing` at run time would cost `shoal validate` (issue 17)
if TYPE_CHECKING:
    from typing import Final
del TYPE_CHECKING  # a flag, not a limit: every other upper-case name here is one

MAX_NODES: Final = 1000
"""Nodes in one Workflow (`spec.nodes`)."""
MAX_DEPENDS_ON: Final = 1000
"""Entries of one node's `dependsOn`."""
MAX_NAME_LENGTH: Final = 63
"""A node name: a DNS label."""
MAX_STRING_LENGTH: Final = 1024
"""Short strings: `image`, `job`, `itemArg`, artifact prefix, env names."""
MAX_TEXT_LENGTH: Final = 65536
"""Longer text: one `command` element, one env value."""
MAX_LIST_ITEMS: Final = 1000
"""Entries of `command`, `env`, `tolerations` and similar lists."""
MAX_PROPERTIES: Final = 1000
"""Keys of `parameters`, `nodeSelector`, resource maps."""

MAX_EXPRESSION_LENGTH: Final = 4096
"""Characters of one CEL expression (`when`, `forEach`, a `${{ }}` template, a poll
condition)."""
MAX_EXPRESSION_NESTING: Final = 32
"""Brackets and parentheses nested inside one expression."""
MAX_COMPREHENSION_NESTING: Final = 2
"""Comprehension macros (`all`, `exists`, `map`, `filter`, ...) nested inside each other.
Each level multiplies the work by the size of a list; three levels over 100 elements are
already a million steps."""
EXPRESSION_TIMEOUT_SECONDS: Final = 1.0
"""Wall-clock budget of one evaluation of an expression that iterates (uses a
comprehension macro); it runs in a helper process that is killed when the budget is
spent."""
EVALUATOR_MEMORY_BYTES: Final = 1024 * 1024 * 1024
"""Address space of that helper process; an expression that needs more fails."""

MAX_JSON_DEPTH: Final = 32
"""Nesting of objects and lists inside `args`, `parameters` and a literal `forEach`."""
MAX_JSON_ELEMENTS: Final = 200_000
"""Values (scalars, objects and lists) inside one `args`, `parameters` or `forEach`."""
MAX_JSON_BYTES: Final = 2 * 1024 * 1024
"""Characters of the strings and keys inside one `args`, `parameters` or `forEach`; above
what etcd stores in one object (1.5 MiB), so it binds only local runs and given parameters."""
MAX_ALIAS_VALUES: Final = 200_000
"""Values that YAML aliases (`*name`, `<<: *name`) may add to one document beyond those
written out: more is refused when the file is read, as kubectl refuses "excessive
aliasing", so a small file cannot stand for billions of values."""
MAX_FAN_OUT_ITEMS: Final = 1_000_000
"""Items one `forEach` may yield at run time (from an upstream output or an offloaded
list): 10x the 100,000-item fan-outs Shoal is built for; past it the node fails before
any item is tracked, so one fan-out cannot exhaust the operator's memory."""
MAX_DECODE_DEPTH: Final = 100
"""Deeper JSON in a watch event is cut by the operator's decoder (and then refused by
validation, since it exceeds MAX_JSON_DEPTH): the interpreter's recursion limit is never
reached while decoding."""

MAX_STATUS_OUTPUTS_BYTES: Final = 32 * 1024
"""JSON bytes of one node's outputs kept in the Workflow's status; larger ones stay out
(the artifact store carries them)."""
MAX_STATUS_ITEM_RANGES_CHARS: Final = 16 * 1024
"""Characters of a fan-out's `succeededItems` ranges kept in the status; past it nothing
is recorded and a retry runs every item again."""
MAX_ARCHIVED_OUTPUTS_BYTES: Final = 64 * 1024
"""JSON bytes of one attempt's outputs the archive keeps; larger ones are noted, not kept."""
MAX_FORWARDED_OUTPUTS_BYTES: Final = 512 * 1024
"""JSON bytes of upstream outputs an `after` trigger passes to its run's parameters,
inside the Workflow object."""

MAX_KEPT_SUCCEEDED_PODS: Final = 100
"""Succeeded pods one Workflow keeps for `shoal logs` under the default pod clean-up (no
`spec.podGC`): nodes are kept whole while they fit, the first items of the node that
crosses the bound are kept, and every later succeeded pod is deleted when its node
finishes, so a 10,000-item fan-out does not keep 10,000 Jobs."""
MAX_RESULT_BYTES: Final = 256 * 1024
"""UTF-8 bytes of a command node's captured stdout (`captureStdout`, read as
`outputs.result`); a node whose stdout is longer fails naming this limit, since a
result cut short would pass on silently wrong data."""
MAX_CHILD_DEPTH: Final = 4
"""Workflows nested through child-workflow nodes (`workflow:`): a child of a child ... at
most this deep. Counted in the manifest (inline specs) and at run time from the parent's
`shoal.dev/depth` label, so a loop of workflows creating each other stops here."""
MAX_OUTPUT_FILE_BYTES: Final = 256 * 1024
"""Bytes of one file a command node declares in `outputs` (`{name: {path: ...}}`); a
larger file fails the node naming this limit (large data belongs in an artifact)."""
MAX_OUTPUT_FILES: Final = 32
"""Files one command node may declare in `outputs`."""

MAX_TEMPLATE_DEPTH: Final = 8
"""Templates nested in each other through `templateRef` (a template's node referring to
another template, and so on); deeper chains are refused, so expansion always ends."""
MAX_TEMPLATES: Final = 64
"""Distinct templates one Workflow may use, counting those its templates use."""
