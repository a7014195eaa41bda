"""The part of the kubelet's HTTPS API the API server calls: ``/containerLogs``.

A deliberately small HTTP/1.1 server on asyncio streams (one request per connection,
chunked responses so ``follow`` streams). Clients must present a certificate signed by
the cluster CA, which in practice means the API server's kubelet-client certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from .logs import LogOptions, parse_time, read_logs

if TYPE_CHECKING:
    from .node import NodeRuntime

log = logging.getLogger(__name__)

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def server_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class KubeletAPI:
    def __init__(self, node: NodeRuntime) -> None:
        self.node = node

    async def serve(self, ctx: ssl.SSLContext) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.node.node.port, ssl=ctx)
        async with server:
            await server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, _ = request_line.split(" ", 2)
            if method != "GET":
                await self._reply(writer, 405, "only GET is supported\n")
                return
            url = urlsplit(target)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            if parts == ["healthz"]:
                await self._reply(writer, 200, "ok")
            elif len(parts) == 4 and parts[0] == "containerLogs":
                await self._logs(reader, writer, parts[1], parts[2], parts[3], query)
            else:
                await self._reply(writer, 404, f"{url.path} is not served by the node agent\n")
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, ssl.SSLError):
            pass
        except Exception:
            log.exception("kubelet API request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _reply(self, writer: asyncio.StreamWriter, code: int, body: str) -> None:
        data = body.encode()
        writer.write(
            f"HTTP/1.1 {code} {_REASONS.get(code, '')}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()

    async def _logs(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        namespace: str,
        pod: str,
        container: str,
        query: dict[str, str],
    ) -> None:
        worker = self.node.by_name.get((namespace, pod))
        if worker is None:
            await self._reply(writer, 404, f'pod "{pod}" not found on node {self.node.name}\n')
            return
        c = worker.container(container)
        if c is None:
            await self._reply(writer, 400, f'container "{container}" not found in pod "{pod}"\n')
            return
        try:
            opts = LogOptions(
                follow=query.get("follow") == "true",
                timestamps=query.get("timestamps") == "true",
                tail_lines=int(query["tailLines"]) if "tailLines" in query else None,
                limit_bytes=int(query["limitBytes"]) if "limitBytes" in query else None,
                stream=query.get("stream", "All"),
            )
            if "sinceSeconds" in query:
                opts.since = time.time() - int(query["sinceSeconds"])
            elif "sinceTime" in query:
                opts.since = parse_time(query["sinceTime"])
        except ValueError as err:
            await self._reply(writer, 400, f"bad log options: {err}\n")
            return
        previous = query.get("previous") == "true"
        if previous:
            if c.restart_count == 0:
                msg = f'previous terminated container "{container}" in pod "{pod}" not found\n'
                await self._reply(writer, 400, msg)
                return
            chunks = read_logs(worker.log_path(container, c.restart_count - 1), None, opts)
        else:
            if c.writer is None:
                reason = c.state.get("waiting", {}).get("reason", "ContainerCreating")
                msg = f'container "{container}" in pod "{pod}" is waiting to start: {reason}\n'
                await self._reply(writer, 400, msg)
                return
            chunks = read_logs(c.writer.path, c.writer, opts)
        await self._stream(reader, writer, chunks)

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        chunks: AsyncIterator[bytes],
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        # A follower may wait a long time for output; notice when the client hangs up.
        hangup = asyncio.ensure_future(reader.read(1))
        try:
            iterator = chunks.__aiter__()
            while True:
                step = asyncio.ensure_future(iterator.__anext__())
                await asyncio.wait({step, hangup}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await step
                    return
                try:
                    chunk = step.result()
                except StopAsyncIteration:
                    break
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            hangup.cancel()
            with contextlib.suppress(Exception):
                await chunks.aclose()  # type: ignore[attr-defined]
