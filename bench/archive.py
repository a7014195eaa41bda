"""The log archive: ingest rate through ArchiveLogSink, and memory while PostgreSQL is paused.

Starts a throwaway PostgreSQL (`tests/support`, Debian's binaries) unless `--dsn` is
given, applies the schema, and measures in the same run:

  plain COPY   the lines written with one `copy_records_to_table` call: the floor.
               Both are run `--repeat` times, interleaved; medians are reported.
  sink         the same lines through `ArchiveLogSink.write` (what the runner calls),
               offered in chunks as log streams deliver them, until the last one is
               acknowledged (committed). Reported as lines/s and as a ratio to the plain
               COPY (target >= 0.7); drops must be 0. Also the cost of one `write` call.
  paused       the server frozen with SIGSTOP (not refusing: hanging, the worst case)
               while many more lines than the buffer holds are written: the process RSS
               and the sink's pending lines at checkpoints (they must plateau), the
               dropped count, then the time to catch up after the server resumes.

    .venv/bin/python bench/archive.py [--lines 300000] [--paused-lines 1000000] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shoal.archive.db import open_pool  # noqa: E402
from shoal.archive.sink import COLUMNS, TABLE, ArchiveLogSink  # noqa: E402

NODES = 8
CHUNK = 500  # lines a log stream hands over at once


def line(n: int) -> str:
    # A typical log line: timestamp-ish prefix, ~90 characters.
    return f"2026-03-01T10:00:{n % 60:02d}Z INFO processed record {n} of batch {n // 1000}: ok"


def rss_mib() -> float:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def truncate(pool: Any) -> None:
    # Each measurement starts from an empty table and index.
    async with pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {TABLE}")


async def plain_copy(pool: Any, lines: int) -> float:
    now = datetime.now(UTC)
    records = [(f"copy-{n % NODES}", f"n{n % NODES}", 0, 1, now, line(n)) for n in range(lines)]
    async with pool.acquire() as conn:
        start = time.perf_counter()
        await conn.copy_records_to_table(TABLE, records=records, columns=COLUMNS)
        return lines / (time.perf_counter() - start)


async def through_sink(pool: Any, lines: int) -> tuple[float, float, int]:
    sink = ArchiveLogSink(pool)
    sink.start()
    texts = [line(n) for n in range(lines)]
    write_seconds = 0.0
    start = time.perf_counter()
    for base in range(0, lines, CHUNK):
        t = time.perf_counter()
        for n in range(base, min(base + CHUNK, lines)):
            sink.write("sink", f"n{n % NODES}", 0, 1, texts[n])
        write_seconds += time.perf_counter() - t
        # A stream delivers its next chunk when the reader gets to it: yield to the loop,
        # and stay below the buffer cap so the figure measures throughput, not drops.
        await asyncio.sleep(0)
        while sink.pending > sink.buffer.max_lines // 2:  # noqa: ASYNC110 (a level, polled)
            await asyncio.sleep(0.001)
    await sink.drain()
    elapsed = time.perf_counter() - start
    await sink.close()
    return lines / elapsed, write_seconds / lines * 1e6, sink.buffer.dropped_total


async def paused(pool: Any, server: Any, lines: int) -> None:
    sink = ArchiveLogSink(pool, timeout_seconds=2)
    sink.start()
    sink.write("paused", "n0", 0, 1, "before the pause")
    await sink.drain()
    text = line(0)
    print(f"  RSS before: {rss_mib():.1f} MiB (buffer cap {sink.buffer.max_lines} lines)")
    server.pause()
    try:
        for n in range(lines):
            sink.write("paused", f"n{n % NODES}", 0, 1, text + str(n))
            if n % CHUNK == 0:
                await asyncio.sleep(0)
            if (n + 1) % (lines // 5) == 0:
                print(
                    f"  after {n + 1:>9} lines: RSS {rss_mib():7.1f} MiB, pending "
                    f"{sink.pending}, dropped {sink.buffer.dropped_total}"
                )
    finally:
        server.resume()
    start = time.perf_counter()
    await sink.drain()
    print(
        f"  resumed: caught up in {time.perf_counter() - start:.2f}s; acknowledged "
        f"{sink.acknowledged} lines (markers included), dropped {sink.buffer.dropped_total}"
    )
    await sink.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--paused-lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; medians")
    parser.add_argument("--dsn", help="an existing database (the paused part is skipped)")
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
            print(f"PostgreSQL {version}, {args.lines} lines of ~90 characters, {NODES} nodes")
            copies, sinks = [], []
            for _ in range(args.repeat):  # interleaved, so load on the machine hits both
                await truncate(pool)
                copies.append(await plain_copy(pool, args.lines))
                await truncate(pool)
                sinks.append(await through_sink(pool, args.lines))
            copy_rate = statistics.median(copies)
            sink_rate = statistics.median(s[0] for s in sinks)
            write_us = statistics.median(s[1] for s in sinks)
            dropped = sum(s[2] for s in sinks)
            pairs = [(round(c), round(s[0])) for c, s in zip(copies, sinks, strict=True)]
            print(f"  runs (COPY, sink lines/s): {pairs}")
            print(f"  plain COPY (one call):  {copy_rate:10,.0f} lines/s")
            print(
                f"  through ArchiveLogSink: {sink_rate:10,.0f} lines/s = "
                f"{sink_rate / copy_rate:.2f}x plain COPY (target >= 0.7), dropped {dropped}"
            )
            print(f"  write() call: {write_us:.2f} us per line (synchronous, never waits)")
            if server is not None:
                print(f"Database paused, {args.paused_lines} lines written:")
                await paused(pool, server, args.paused_lines)
        finally:
            pool.terminate()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
