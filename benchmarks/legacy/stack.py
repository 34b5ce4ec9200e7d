"""The legacy read path, started as a whole: stream, table, consumer process, page data service.

    with LegacyStack(ttl=30.0) as legacy:
        ingestion = Ingestion(cms, {"legacy": legacy.writer})   # ingestion → the stream
        offset = ingestion.ingest(events).offsets["legacy"]
        legacy.wait_applied(offset)                              # the consumer has stored it
        builder = LegacyPageBuilder(Layouts.load(), legacy.client)

Every run gets its own stream, subject and table (a random suffix), removed on close, so runs on a
shared server do not collide. The two processes are started with this package on ``PYTHONPATH``
and stopped (SIGTERM, then SIGKILL) on close; their output goes to this process's stderr.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from legacy import keys
from legacy.kv import KVTable
from legacy.publish import StreamWriter
from legacy.service import PageDataClient

NATS_URL = "nats://127.0.0.1:4222"
POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
_HERE = Path(__file__).resolve().parent.parent  # benchmarks/, where the package `legacy` lives


class LegacyStack:
    """See the module docstring. ``ttl`` and ``jitter`` are the near-cache's."""

    def __init__(self, nats: str = NATS_URL, dsn: str = POSTGRES_DSN, ttl: float = 30.0, jitter: float = 0.1):
        self.nats, self.dsn, self.ttl, self.jitter = nats, dsn, ttl, jitter
        suffix = secrets.token_hex(4)
        self.stream, self.subject, self.table_name = (
            f"LEGACY_{suffix}",
            f"legacy.{suffix}.records",
            f"legacy_kv_{suffix}",
        )
        self._procs: list[subprocess.Popen[bytes]] = []
        self.table = KVTable(dsn, self.table_name)
        self.table.create()
        self.writer: StreamWriter | None = None
        self.client: PageDataClient | None = None
        try:
            self.writer = StreamWriter(nats, self.stream, self.subject)
            self._spawn("consumer", "--servers", nats, "--stream", self.stream, "--subject", self.subject,
                        "--dsn", dsn, "--table", self.table_name)  # fmt: skip
            self.port = _free_port()
            self._spawn("service", "--dsn", dsn, "--table", self.table_name, "--port", str(self.port),
                        "--ttl", str(ttl), "--jitter", str(jitter))  # fmt: skip
            self.client = PageDataClient("127.0.0.1", self.port)
            self._wait_for_service()
        except BaseException:
            self.close()
            raise

    def _spawn(self, module: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_HERE), os.environ.get("PYTHONPATH", "")])}
        command = [sys.executable, "-m", f"legacy.{module}", *args]
        self._procs.append(subprocess.Popen(command, env=env, preexec_fn=_die_with_parent))

    def _wait_for_service(self, timeout: float = 30.0) -> None:
        assert self.client is not None
        deadline = time.monotonic() + timeout
        while True:
            for p in self._procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a legacy process exited with {p.returncode}: {p.args}")
            try:
                self.client.stats()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the page data service did not answer on port {self.port}") from None
                time.sleep(0.1)

    def applied(self) -> int:
        """The stream sequence the consumer has stored everything up to (read from the table)."""
        value = self.table.get_many([keys.APPLIED]).get(keys.APPLIED)
        return int(value) if value is not None else 0

    def wait_applied(self, offset: int, timeout: float = 300.0, poll: float = 0.005) -> float:
        """Wait until the consumer has stored stream sequence ``offset``; returns when (monotonic)."""
        deadline = time.monotonic() + timeout
        while self.applied() < offset:
            if any(p.poll() is not None for p in self._procs):
                raise RuntimeError("a legacy process exited; see its output above")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the consumer did not store offset {offset} within {timeout:g} s")
            time.sleep(poll)
        return time.monotonic()

    def stats(self) -> dict[str, Any]:
        assert self.client is not None
        return self.client.stats()

    def close(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
        for p in self._procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._procs.clear()
        if self.client is not None:
            self.client.close()
        if self.writer is not None:
            self.writer.delete_stream()
            self.writer.close()
            self.writer = None
        self.table.drop()
        self.table.close()

    def __enter__(self) -> LegacyStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _die_with_parent() -> None:
    """In the child, before it runs: SIGTERM it when this process dies (Linux), so that a benchmark
    killed outright leaves no consumer or service behind."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
