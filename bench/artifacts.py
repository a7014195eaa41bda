"""Artifact store throughput: the SDK's S3 store against plain boto3, in the same run.

Starts a throwaway MinIO on loopback (`tests/support`, the cached binary), writes a
random file (`--size-mib`, 1 GiB by default) and, `--repeat` times, interleaved:

  plain upload    boto3 `upload_file` with the default TransferConfig: the baseline.
  sdk upload      `open_store(settings).put_file`: also hashes (sha256) the file and
                  records it as object metadata.
  plain download  boto3 `download_file`, default TransferConfig.
  sdk download    `store.get_file`: parallel ranged GETs, written and verified in order.

Every transfer runs in its own child process, which times the transfer alone (not the
interpreter or client start-up) and reports its CPU time and its peak RSS (`VmHWM`: the
whole process, interpreter and boto3 included). Prints medians in MiB/s, the ratio
sdk/plain (target >= 0.9), CPU seconds per GiB, and the SDK's peak RSS (target < 200 MiB).
Rounds alternate which side goes first.
The machine is shared, so wall-clock speeds are noisy; CPU per GiB is the steadier figure.

    .venv/bin/python bench/artifacts.py [--size-mib 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUCKET = "bench"
RATIO_TARGET = 0.9
RSS_TARGET_MIB = 200
VARIANTS = ("plain-upload", "sdk-upload", "plain-download", "sdk-download")


def child(variant: str, config: dict[str, Any]) -> dict[str, Any]:
    """One transfer in this (child) process: seconds taken and peak RSS."""
    from shoal_worker.artifacts import ArtifactRef, StoreSettings, open_store

    settings = StoreSettings(
        f"s3://{BUCKET}",
        endpoint=config["endpoint"],
        access_key_id=config["access_key"],
        secret_access_key=config["secret_key"],
    )
    if variant.startswith("plain"):
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=config["endpoint"],
            aws_access_key_id=config["access_key"],
            aws_secret_access_key=config["secret_key"],
            region_name="us-east-1",
        )
        cpu_before = cpu_now()
        if variant == "plain-upload":
            started = time.perf_counter()
            client.upload_file(config["source"], BUCKET, config["key"])
        else:
            started = time.perf_counter()
            client.download_file(BUCKET, config["key"], config["target"])
    else:
        store = open_store(settings)
        cpu_before = cpu_now()
        if variant == "sdk-upload":
            started = time.perf_counter()
            store.put_file(config["key"], config["source"])
        else:
            ref = ArtifactRef(**config["ref"])
            started = time.perf_counter()
            store.get_file(ref, config["target"])
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "seconds": elapsed,
        "cpu": usage.ru_utime + usage.ru_stime - cpu_before,
        "peak_rss_mib": peak_rss() / (1024 * 1024),
    }


def peak_rss() -> int:
    """This process's peak RSS in bytes (``ru_maxrss`` would include the parent's, from
    before ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_child(variant: str, config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", variant, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def write_random(path: Path, size: int) -> str:
    import hashlib

    digest = hashlib.sha256()
    block = 64 * 1024 * 1024
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(block, left))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("config", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.config))))
        return 0

    from tests.support.services import start_minio

    size = args.size_mib * 1024 * 1024
    work = Path(tempfile.mkdtemp(prefix="shoal-bench-artifacts-"))
    minio = start_minio(work / "minio")
    try:
        minio.client().create_bucket(Bucket=BUCKET)
        source = work / "source.bin"
        sha256 = write_random(source, size)
        base = {
            "endpoint": minio.endpoint,
            "access_key": minio.access_key,
            "secret_key": minio.secret_key,
            "source": str(source),
            "target": str(work / "downloaded.bin"),
            "ref": {"key": "object", "size": size, "sha256": sha256},
        }
        print(
            f"python {sys.version.split()[0]}; {args.size_mib} MiB random file; MinIO at "
            f"{minio.endpoint}; median of {args.repeat}; targets: sdk/plain >= {RATIO_TARGET}, "
            f"sdk peak RSS < {RSS_TARGET_MIB} MiB"
        )
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        s3 = minio.client()
        for round_ in range(args.repeat):
            # Alternate who goes first, so a drift in the machine's load hits both alike.
            first, second = ("plain", "sdk") if round_ % 2 == 0 else ("sdk", "plain")
            order = [f"{who}-{what}" for what in ("upload", "download") for who in (first, second)]
            for variant in order:
                result = run_child(variant, {**base, "key": "object"})
                results[variant].append(result)
                Path(base["target"]).unlink(missing_ok=True)
            s3.delete_object(Bucket=BUCKET, Key="object")
        return report(results, size)
    finally:
        minio.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, list[dict[str, Any]]], size: int) -> int:
    mib = size / (1024 * 1024)
    speed = {v: mib / statistics.median(r["seconds"] for r in results[v]) for v in VARIANTS}
    rss = {v: max(r["peak_rss_mib"] for r in results[v]) for v in VARIANTS}
    cpu = {v: statistics.median(r["cpu"] for r in results[v]) / (mib / 1024) for v in VARIANTS}
    ok = True
    for direction in ("upload", "download"):
        plain, sdk = speed[f"plain-{direction}"], speed[f"sdk-{direction}"]
        ratio = sdk / plain
        sdk_rss = rss[f"sdk-{direction}"]
        ok = ok and ratio >= RATIO_TARGET and sdk_rss < RSS_TARGET_MIB
        print(
            f"{direction:<9} plain {plain:7.1f} MiB/s  sdk {sdk:7.1f} MiB/s  ratio {ratio:5.3f}  "
            f"cpu s/GiB plain {cpu[f'plain-{direction}']:5.2f} sdk {cpu[f'sdk-{direction}']:5.2f}  "
            f"peak RSS sdk {sdk_rss:6.1f} MiB (plain {rss[f'plain-{direction}']:6.1f} MiB)"
        )
    for variant in VARIANTS:
        runs = ", ".join(f"{mib / r['seconds']:.0f}" for r in results[variant])
        print(f"  {variant:<15} MiB/s per run: {runs}")
    print("within targets" if ok else "OUTSIDE a target")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
