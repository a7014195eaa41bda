"""Jobs used by the examples. A worker image registers its jobs the same way.

`shoal run --import jobs examples/<file>.yaml` imports this module in every worker
process (the manifest's folder is on the import path), which registers the names below.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

from shoal_worker import Context, job


@job("greet")
def greet(ctx: Context, name: str, greeting: str = "hello") -> dict[str, str]:
    """Say hello; the message becomes an output other nodes can read."""
    message = f"{greeting}, {name}!"
    ctx.log(message)
    return {"message": message}


@job("market-finder")
def market_finder(ctx: Context, region: str, count: int = 4) -> dict[str, object]:
    """Pretend to discover markets in a region: returns a list to fan out over."""
    markets = [f"{region}-{i}" for i in range(1, count + 1)]
    ctx.log(f"found {len(markets)} markets in {region}")
    return {"market_ids": markets}


@job("data-proxy")
def data_proxy(ctx: Context) -> dict[str, str]:
    """Stand-in for a service the integration step needs; outputs its address."""
    return {"endpoint": "http://127.0.0.1:8080"}


@job("integration")
def integration(ctx: Context, market: str, endpoint: str, flaky_market: str = "") -> dict[str, int]:
    """Process one market (one pod per market in a cluster), reporting progress.

    `flaky_market`'s first attempt fails as a transient error would, to show a retry.
    """
    if market == flaky_market and ctx.attempt == 1:
        ctx.fail(f"{market}: upstream timed out (transient); the retry policy runs it again")
    records = 0
    for step in range(1, 5):
        records += int(hashlib.sha256(f"{market}{step}".encode()).hexdigest()[:2], 16) % 10
        time.sleep(0.15)  # stand-in for real work, so the live view has something to show
        ctx.progress(step * 25, f"{market}: step {step}/4")
    ctx.log(f"{market}: {records} records via {endpoint}")
    return {"count": records}


@job("publish")
def publish(ctx: Context, counts: list[int]) -> dict[str, int]:
    """Sum the per-market counts of the fan-out."""
    total = sum(c for c in counts if c is not None)
    ctx.log(f"publishing {total} records")
    return {"published": total}


@job("add")
def add(ctx: Context, a: float, b: float) -> dict[str, float]:
    """Add two numbers (the diamond example)."""
    return {"sum": a + b}


@job("multiply")
def multiply(ctx: Context, a: float, b: float) -> dict[str, float]:
    """Multiply two numbers (the diamond example)."""
    return {"product": a * b}


@job("flaky")
def flaky(ctx: Context, succeed_on_attempt: int = 2) -> dict[str, int]:
    """Fail until attempt `succeed_on_attempt`: shows retries keeping their promise."""
    if ctx.attempt < succeed_on_attempt:
        ctx.fail(f"transient failure on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}


@job("explode")
def explode(ctx: Context, reason: str) -> None:
    """Fail on purpose with a Python exception (the failing example)."""
    ctx.log("about to fail")
    raise RuntimeError(reason)


@job("write-dataset")
def write_dataset(ctx: Context, megabytes: int, rows: int) -> dict[str, object]:
    """Write a file of `megabytes` MB, save it to the artifact store, list `rows` row ids.

    The file goes up streamed (memory stays flat however large it is); the id list is
    an ordinary output that the worker offloads when it is larger than `offloadBytes`.
    """
    block = hashlib.sha256(b"shoal").digest() * (1 << 15)  # 1 MiB of known bytes
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dataset.bin"
        with path.open("wb") as out:
            for _ in range(megabytes):
                out.write(block)
        ref = ctx.save_artifact("dataset.bin", path)
    ctx.log(f"saved {ref.size} bytes as {ref.key}")
    return {"dataset": ref.as_output(), "ids": [f"row-{i:06d}" for i in range(rows)]}


@job("check-row")
def check_row(
    ctx: Context, id: str, dataset: dict[str, object], sample_every: int
) -> dict[str, object]:
    """Score one row; every `sample_every`-th row also reads the whole dataset back."""
    number = int(id.removeprefix("row-"))
    outputs: dict[str, object] = {"score": number % 7}
    if number % sample_every == 0:
        digest = hashlib.sha256()
        for chunk in ctx.open_artifact(dataset):
            digest.update(chunk)
        outputs["read"] = digest.hexdigest()
    return outputs


@job("summarize")
def summarize(ctx: Context, scores: list[int], reads: list[str | None]) -> dict[str, object]:
    """Join a fan-out's aggregated outputs (they arrive as plain lists, however long)."""
    checked = sorted({r for r in reads if r is not None})
    ctx.log(f"{len(scores)} scores, the dataset was read {sum(r is not None for r in reads)} times")
    return {"total": sum(scores), "rows": len(scores), "datasetDigests": checked}


@job("print-records")
def print_records(ctx: Context, records: list[str]) -> dict[str, int]:
    """Print records from an untrusted source as they are: they stay log lines, whatever
    they look like, because they cannot carry the attempt's protocol token."""
    for record in records:
        print(record)
    return {"printed": len(records)}
