"""Real MinIO and PostgreSQL servers on loopback, each in a throwaway directory."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import binaries
from .procs import MissingPrerequisite, Server, StartError, free_port, log_tail, wait_until


@dataclass
class MinioServer:
    """A MinIO server; ``client()`` gives a boto3 S3 client for it."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    server: Server | None = field(default=None, repr=False)

    def client(self) -> Any:
        import boto3  # the s3 extra; imported late so the plugin loads without it

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted, nothing is answered."""
        if self.server is not None and self.server.proc.poll() is None:
            os.killpg(self.server.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.server is not None and self.server.proc.poll() is None:
            os.killpg(self.server.pid, signal.SIGCONT)


def start_minio(root: Path) -> MinioServer:
    binary = binaries.minio_bin()
    port, console = free_port(), free_port()
    access, secret = "shoal-test", secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "MINIO_ROOT_USER": access,
        "MINIO_ROOT_PASSWORD": secret,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "HOME": str(root),
    }
    server = Server(
        "minio",
        [
            str(binary),
            "server",
            str(root / "data"),
            "--address",
            f"127.0.0.1:{port}",
            "--console-address",
            f"127.0.0.1:{console}",
            "--quiet",
        ],
        root / "minio.log",
        env=env,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            "MinIO /minio/health/ready",
            lambda: httpx.get(f"{endpoint}/minio/health/ready", timeout=2).status_code == 200,
            60,
            servers=[server],
        )
    except StartError:
        server.stop()
        raise
    return MinioServer(endpoint, access, secret, server=server)


@dataclass
class PostgresServer:
    """A PostgreSQL cluster made by initdb for this test session only (trust auth)."""

    host: str
    port: int
    user: str
    database: str
    server: Server | None = field(default=None, repr=False)
    run_as: str | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=15)

    def start(self) -> None:
        """Start a stopped server again: same data directory, same port.

        For tests of clients that must survive a database restart. Call it from the main
        thread: the server gets a parent-death signal when the starting thread exits.
        """
        old = self.server
        if old is None or old.proc.poll() is None:
            return
        self.server = Server(
            old.name,
            [str(a) for a in old.proc.args],  # type: ignore[union-attr]
            old.log,
            user=self.run_as,
            stop_signal=old.stop_signal,
        )
        _wait_ready(self.port, self.user, self.server)

    def pause(self) -> None:
        """Freeze every server process (SIGSTOP): connections hang, nothing is refused."""
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, sig: int) -> None:
        # Backends call setsid(), so the postmaster's process group does not hold them:
        # signal the postmaster and its children by parent pid.
        if self.server is None:
            return
        root = self.server.pid
        pids = [root]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(") ", 1)[1].split()[1]) == root:
                    pids.append(int(stat.parent.name))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def _run(argv: list[str], what: str, user: str | None) -> None:
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, check=False, user=user, group=user
    )
    if proc.returncode != 0:
        raise StartError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def _wait_ready(port: int, user: str, server: Server) -> None:
    isready = [
        str(binaries.pg_bindir() / "pg_isready"),
        "-q",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        user,
    ]
    wait_until(
        "PostgreSQL to accept connections",
        lambda: subprocess.run(isready, check=False, timeout=5).returncode == 0,
        60,
        servers=[server],
    )


def start_postgres(root: Path) -> PostgresServer:
    bindir = binaries.pg_bindir()
    # PostgreSQL refuses to run as root; Debian's package creates the "postgres" user.
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError as err:
            raise MissingPrerequisite("running as root, but there is no 'postgres' user") from err
        run_as = "postgres"
        shutil.chown(root, account.pw_uid, account.pw_gid)
    data, sockets = root / "data", root / "sockets"
    for directory in (data, sockets):
        directory.mkdir(mode=0o700)
        if run_as:
            shutil.chown(directory, run_as, run_as)
    user, database = "shoal", "shoal"
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ],
        "initdb",
        run_as,
    )
    port = free_port()
    server = Server(
        "postgres",
        [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(sockets),
            "-c",
            "listen_addresses=127.0.0.1",
            # Throwaway data: durability costs time and buys nothing here.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        root / "postgres.log",
        user=run_as,
        stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM waits for clients
    )
    try:
        _wait_ready(port, user, server)
        _run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database],
            "createdb",
            None,
        )
    except StartError as err:
        server.stop()
        raise StartError(f"{err}\n{log_tail(server.log)}") from err
    return PostgresServer("127.0.0.1", port, user, database, server=server, run_as=run_as)
