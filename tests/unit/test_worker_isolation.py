"""shoal_worker stays slim: standard library only, never the control plane.

Worker images install shoal_worker without kopf, kubernetes, asyncpg, boto3 or pydantic,
so importing it (or running a job with it) must not touch them, nor the ``shoal``
control-plane package that does. Checked in a fresh interpreter, because this test
process has long since imported all of them.

The one exception is ``s3_store``: the S3 artifact store needs boto3 (the ``s3`` extra),
so only ``open_store`` imports it, and only for an ``s3://`` url.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import shoal_worker

FORBIDDEN = ("kopf", "kubernetes", "asyncpg", "boto3", "botocore", "pydantic", "shoal")
FORBIDDEN_EXTRA = ("yaml", "rich", "cel", "croniter", "httpx", "aiohttp", "prometheus_client")
# Start-up cost: a plain sync job must not pay for these either.
SLOW = ("asyncio", "importlib.metadata", "argparse", "shutil", "typing", "difflib", "traceback")
# Modules allowed one optional third-party dependency, imported only on demand.
OPTIONAL = {"s3_store.py": {"boto3", "botocore"}}

PROBE = """
import json, sys
before = set(sys.modules)
import shoal_worker
import shoal_worker.protocol
after_import = set(sys.modules)
from shoal_worker.runner import main
code = main(["run", "--job", "shoal.echo", "--args", '{"a": 1}', "--termination-log", sys.argv[1]])
print(json.dumps({
    "code": code,
    "import": sorted(after_import - before),
    "run": sorted(set(sys.modules) - before),
    "baseline": sorted(before),
}))
"""


def probe(tmp_path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "termination-log")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert isinstance(result, dict)
    return result


def top_level(modules: object) -> set[str]:
    assert isinstance(modules, list)
    return {str(name).split(".")[0] for name in modules}


def test_importing_and_running_a_job_never_imports_the_control_plane(tmp_path: Path) -> None:
    result = probe(tmp_path)
    assert result["code"] == 0
    for phase in ("import", "run"):
        loaded = top_level(result[phase])
        assert loaded.isdisjoint(FORBIDDEN), f"{phase}: {sorted(loaded & set(FORBIDDEN))}"
        assert loaded.isdisjoint(FORBIDDEN_EXTRA), phase


def test_a_sync_job_skips_slow_imports(tmp_path: Path) -> None:
    result = probe(tmp_path)
    baseline, loaded = result["baseline"], result["run"]
    assert isinstance(baseline, list)
    assert isinstance(loaded, list)
    slow = [name for name in SLOW if name in loaded and name not in baseline]
    assert slow == []


def test_the_package_imports_only_the_standard_library() -> None:
    """Static check: every import in shoal_worker is stdlib or shoal_worker itself."""
    package = Path(shoal_worker.__file__).parent
    allowed = set(sys.stdlib_module_names) | {"shoal_worker"}
    offenders = []
    for source in sorted(package.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            permitted = allowed | OPTIONAL.get(source.name, set())
            offenders += [
                f"{source.name}: {name}" for name in names if name.split(".")[0] not in permitted
            ]
    assert offenders == []


LOCAL_STORE_PROBE = """
import json, sys
from shoal_worker.artifacts import StoreSettings, open_store
store = open_store(StoreSettings(sys.argv[1]))
ref = store.put_bytes("k", b"data")
assert store.read_bytes(ref) == b"data"
print(json.dumps(sorted(sys.modules)))
"""


def test_a_local_artifact_store_never_loads_boto3(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOCAL_STORE_PROBE, f"file://{tmp_path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = top_level(json.loads(done.stdout))
    assert loaded.isdisjoint({*FORBIDDEN, "s3transfer"}), sorted(loaded & {*FORBIDDEN})


NO_BOTO3_PROBE = """
import sys
sys.modules["boto3"] = None  # as if the s3 extra were not installed
from shoal_worker.artifacts import ArtifactError, StoreSettings, open_store
try:
    open_store(StoreSettings("s3://bucket/prefix", endpoint="http://127.0.0.1:9"))
except ArtifactError as err:
    print(err)
"""


def test_an_s3_store_without_boto3_says_how_to_install_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_BOTO3_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "s3://bucket/prefix needs boto3" in done.stdout
    assert "pip install 'shoal[s3]'" in done.stdout
