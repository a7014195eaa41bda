"""The attempt archive: how fast finished attempts reach PostgreSQL through AttemptRecorder.

A 100,000-item fan-out finishes 100,000 attempts; each is one row of `shoal_attempts`.
Starts a throwaway PostgreSQL (`tests/support`, Debian's binaries) unless `--dsn` is
given, applies the schema, and measures in the same run, `--repeat` times interleaved
(medians reported, with each run and the load average):

  direct       the same rows through the same upsert (`save_attempts`), called directly in
               batches of the recorder's batch size, one after the other: the same SQL
               work with no buffer, no background task, no event conversion in between.
  recorder     the same attempts through `AttemptRecorder.record` (what the runner calls,
               with the TaskFinished event), until the last batch is committed; as rows/s
               and as a ratio to direct. Drops must be 0. Also the cost of one `record` call.
  COPY         for scale only: one `copy_records_to_table` call, the floor for getting that
               many rows in at all (no upsert, so not the same work).

    .venv/bin/python bench/archive_attempts.py [--attempts 100000] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shoal.archive.attempts import AttemptRecorder, finished_attempt  # noqa: E402
from shoal.archive.db import open_pool  # noqa: E402
from shoal.archive.store import save_attempts  # noqa: E402
from shoal.core.state import TaskFinished  # noqa: E402

COLUMNS = (
    "workflow_uid",
    "node",
    "item_index",
    "attempt",
    "phase",
    "exit_code",
    "message",
    "outputs",
    "outputs_omitted",
    "started_at",
    "finished_at",
)


def event(n: int) -> TaskFinished:
    # Most items succeed with a small output; one in ten fails with a message.
    ok = n % 10 != 0
    return TaskFinished(
        node="integration",
        index=n,
        attempt=1,
        succeeded=ok,
        at=1_700_000_000.0 + n / 100,
        exit_code=0 if ok else 1,
        outputs={"count": n % 97, "market": f"eu-west-{n}"} if ok else {},
        message="" if ok else f"market eu-west-{n}: upstream timed out after 30s",
    )


async def truncate(pool: Any) -> None:
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE shoal_attempts")


async def plain_copy(pool: Any, uid: str, count: int) -> float:
    rows = [finished_attempt(uid, event(n), 1_700_000_000.0) for n in range(count)]
    records = [
        (
            r.uid,
            r.node,
            r.index,
            r.attempt,
            r.phase,
            r.exit_code,
            r.message,
            r.outputs_json,
            r.outputs_omitted,
            r.started_at,
            r.finished_at,
        )
        for r in rows
    ]
    async with pool.acquire() as conn:
        start = time.perf_counter()
        await conn.copy_records_to_table("shoal_attempts", records=records, columns=COLUMNS)
        return count / (time.perf_counter() - start)


async def direct_upsert(pool: Any, uid: str, count: int, batch: int) -> float:
    """Rows/s of the recorder's own upsert, batch after batch, with nothing in between."""
    start = time.perf_counter()
    for base in range(0, count, batch):
        rows = [
            finished_attempt(uid, event(n), 1_700_000_000.0)
            for n in range(base, min(base + batch, count))
        ]
        await save_attempts(pool, rows)
    return count / (time.perf_counter() - start)


async def through_recorder(pool: Any, uid: str, count: int) -> tuple[float, float, int]:
    async def save(rows: Any) -> None:
        await save_attempts(pool, rows)

    recorder = AttemptRecorder(save)
    recorder.start()
    events = [event(n) for n in range(count)]
    record_seconds = 0.0
    start = time.perf_counter()
    for base in range(0, count, 500):
        t = time.perf_counter()
        for n in range(base, min(base + 500, count)):
            recorder.record(uid, events[n], 1_700_000_000.0)
        record_seconds += time.perf_counter() - t
        # Attempts end a few at a time, between other work: yield to the loop, and stay
        # below the buffer cap so the figure measures throughput, not drops.
        await asyncio.sleep(0)
        while recorder.pending > recorder.max_pending // 2:  # noqa: ASYNC110 (a level, polled)
            await asyncio.sleep(0.001)
    await recorder.drain()
    elapsed = time.perf_counter() - start
    await recorder.close()
    return count / elapsed, record_seconds / count * 1e6, recorder.dropped_total


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians")
    parser.add_argument("--dsn", help="an existing database")
    args = parser.parse_args()

    server = None
    dsn = args.dsn
    if dsn is None:
        from tests.support.services import start_postgres

        server = start_postgres(Path(tempfile.mkdtemp(prefix="shoal-bench-pg-")))
        dsn = server.dsn
    try:
        pool = await open_pool(dsn)
        try:
            conn = await asyncpg.connect(dsn)
            version = await conn.fetchval("SHOW server_version")
            await conn.close()
            print(f"PostgreSQL {version}, {args.attempts} attempts of one fan-out node")
            batch = AttemptRecorder(lambda rows: save_attempts(pool, rows)).batch_size
            copies, directs, recorded = [], [], []
            for run in range(args.repeat):  # interleaved, so load on the machine hits all
                await truncate(pool)
                directs.append(await direct_upsert(pool, f"direct-{run}", args.attempts, batch))
                await truncate(pool)
                recorded.append(await through_recorder(pool, f"rec-{run}", args.attempts))
                await truncate(pool)
                copies.append(await plain_copy(pool, f"copy-{run}", args.attempts))
            direct = statistics.median(directs)
            rate = statistics.median(r[0] for r in recorded)
            record_us = statistics.median(r[1] for r in recorded)
            dropped = sum(r[2] for r in recorded)
            runs = [(round(d), round(r[0])) for d, r in zip(directs, recorded, strict=True)]
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"  load average {load}; runs (direct, recorder rows/s): {runs}")
            print(f"  same upsert, direct:     {direct:9,.0f} rows/s (batches of {batch})")
            print(
                f"  through AttemptRecorder: {rate:9,.0f} rows/s = {rate / direct:.2f}x "
                f"direct, dropped {dropped}"
            )
            copy_rate = statistics.median(copies)
            print(f"  plain COPY, for scale:   {copy_rate:9,.0f} rows/s (no upsert)")
            print(f"  record() call: {record_us:.2f} us per attempt (synchronous, never waits)")
        finally:
            pool.terminate()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
