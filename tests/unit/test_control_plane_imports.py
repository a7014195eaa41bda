"""The control plane loads only the worker modules it needs.

`shoal.core.planner` reads value references and encodes values (`shoal_worker.offload`),
nothing more: loading the artifact store, the job registry, the SDK's emitter or boto3
with it would slow every operator and CLI start for nothing. Checked in a fresh
interpreter, because this test process has long since imported all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
before = set(sys.modules)
import shoal.core.planner
print(json.dumps(sorted(set(sys.modules) - before)))
"""

NOT_FOR_THE_PLANNER = (
    "shoal_worker.artifacts",
    "shoal_worker.s3_store",
    "shoal_worker.registry",
    "shoal_worker.emit",
    "shoal_worker.context",
    "boto3",
    "botocore",
)


def loaded_by(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    modules = json.loads(done.stdout.splitlines()[-1])
    assert isinstance(modules, list)
    return {str(name) for name in modules}


def test_importing_the_planner_leaves_the_worker_sdk_unloaded() -> None:
    loaded = loaded_by(PROBE)
    assert "shoal_worker.offload" in loaded  # the probe really imported the planner
    assert loaded.isdisjoint(NOT_FOR_THE_PLANNER), sorted(loaded & set(NOT_FOR_THE_PLANNER))


def test_the_worker_package_still_offers_every_public_name() -> None:
    code = (
        "import json, shoal_worker\n"
        "print(json.dumps([type(getattr(shoal_worker, n)).__name__"
        " for n in shoal_worker.__all__]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    kinds = json.loads(done.stdout)
    assert len(kinds) == 11
    assert "module" not in kinds  # each name is the class, function or constant itself
