"""``python -m nodeagent --config agent.json``: run every configured node until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import warnings
from pathlib import Path

from .config import AgentConfig, load
from .kubelet_api import KubeletAPI, server_context
from .node import NodeRuntime
from .runtime import MemoryCgroups

log = logging.getLogger("nodeagent")


async def run(config: AgentConfig) -> None:
    cgroups = MemoryCgroups()
    nodes = [NodeRuntime(config, node, cgroups) for node in config.nodes]
    ctx = server_context(config.serving_cert, config.serving_key, config.ca)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[None]] = []
    try:
        for node in nodes:
            # Serve logs before registering, so the API server never sees a dead port.
            tasks.append(asyncio.create_task(KubeletAPI(node).serve(ctx)))
            await node.register()
            tasks += [
                asyncio.create_task(node.heartbeat_lease()),
                asyncio.create_task(node.heartbeat_status()),
                asyncio.create_task(node.watch_pods()),
            ]
        log.info("node agent running %d node(s)", len(nodes))
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        log.info("node agent stopping: ending all containers")
        await asyncio.gather(*(node.shutdown() for node in nodes), return_exceptions=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="nodeagent", description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if sys.version_info < (3, 12):
        # 3.11's default child watcher starts a thread per child process; pidfd doesn't.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    asyncio.run(run(load(args.config)))


if __name__ == "__main__":
    main()
