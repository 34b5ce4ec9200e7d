"""The write log and the writer lease on NATS JetStream, against real servers.

* the WriteLog contract, on the shared server (127.0.0.1:4222), in a stream of its own per test;
* a 3-node cluster started here on loopback ports (routes, JetStream storage in tmp): a log with 3
  replicas takes writes with one node down and fails clearly with two down;
* the lease on NATS KV: one holder, expiry, failover, and a deposed writer fenced off by the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from raw_stack import SCHEMA, title
from test_log import WriteLogContract

import services
from marrow.errors import FencedError, LeaseError, LogError
from marrow.raw import Upsert, Writer
from marrow.raw.log import WriteLog
from marrow.raw.natslease import NatsLease
from marrow.raw.natslog import NatsWriteLog

pytestmark = services.needs("nats")
SERVER = services.NATS_URL
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def _delete(servers: str | list[str], *streams: str) -> None:
    async def delete() -> None:
        nc = await nats.connect(servers, allow_reconnect=False, connect_timeout=2)
        js = nc.jetstream()
        for stream in streams:
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await nc.close()

    with contextlib.suppress(Exception):
        asyncio.run(delete())


@pytest.fixture
def name() -> Iterator[str]:
    n = f"test-{uuid.uuid4().hex[:12]}"
    yield n
    _delete(SERVER, f"RAW_{n}", f"KV_raw-lease-{n}")


class TestNatsWriteLog(WriteLogContract):
    @pytest.fixture
    def log(self, name: str) -> Iterator[WriteLog]:
        with NatsWriteLog(name, SERVER, timeout=10) as log:
            yield log


def test_a_second_log_object_sees_the_first_ones_entries(name: str) -> None:
    with NatsWriteLog(name, SERVER) as a, NatsWriteLog(name, SERVER) as b:
        a.append([b"one", b"two"], epoch=1)
        assert [e.payload for e in b.read(0)] == [b"one", b"two"]
        assert b.last_offset() == 2


# --- the lease ---------------------------------------------------------------------------------------


def test_one_holder_at_a_time_and_a_standby_takes_over_after_release(name: str) -> None:
    first, second = NatsLease(name, SERVER, ttl=2), NatsLease(name, SERVER, ttl=2)
    try:
        epoch = first.acquire(timeout=5)
        assert first.held()
        with pytest.raises(LeaseError, match="another writer holds the lease"):
            second.acquire(timeout=0.3)
        time.sleep(2.5)  # past the ttl: renewals keep it
        assert first.held()
        first.release()
        assert not first.held()
        assert second.acquire(timeout=2) > epoch
    finally:
        first.close()
        second.close()


def test_a_lease_nobody_renews_expires_and_the_old_holder_knows(name: str) -> None:
    first, second = NatsLease(name, SERVER, ttl=1), NatsLease(name, SERVER, ttl=1)
    try:
        epoch = first.acquire(timeout=5)
        first._stop.set()  # as if the holder hung: no more renewals, no release
        started = time.monotonic()
        assert second.acquire(timeout=10) > epoch
        assert time.monotonic() - started < 5
        assert not first.held()
    finally:
        second.close()
        first._conn.close()


def test_a_deposed_writer_is_fenced_off_by_the_log(name: str) -> None:
    with NatsWriteLog(name, SERVER) as old_log, NatsWriteLog(name, SERVER) as new_log:
        old = Writer(SCHEMA, old_log, NatsLease(name, SERVER, ttl=1))
        old.start(timeout=5)
        old.bulk_update([Upsert(title(1))])
        old.lease._stop.set()  # type: ignore[attr-defined]  # it stops renewing (paused, cut off)
        old.lease.held = lambda: True  # type: ignore[method-assign]  # and does not notice
        new = Writer(SCHEMA, new_log, NatsLease(name, SERVER, ttl=1))
        new.start(timeout=10)
        assert new.view()["Title"].get(1) is not None  # recovered
        with pytest.raises(FencedError, match="deposed"):
            old.bulk_update([Upsert(title(2))])
        assert new.bulk_update([Upsert(title(3))]) > 0
        assert new.view()["Title"].get(2) is None
        new.close()
        old.lease._conn.close()  # type: ignore[attr-defined]


# --- a 3-node cluster ----------------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Cluster:
    """Three nats-server processes with JetStream, routed to each other on loopback."""

    def __init__(self, directory: Path):
        self.directory = directory
        ports = _free_ports(6)
        self.client_ports, self.route_ports = ports[:3], ports[3:]
        self.processes: list[subprocess.Popen[bytes] | None] = [None, None, None]
        for i in range(3):
            self.start(i)

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.client_ports]

    def start(self, i: int) -> None:
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route_ports) if j != i)
        config = self.directory / f"n{i}.conf"
        config.write_text(
            f"port: {self.client_ports[i]}\nserver_name: n{i}\n"
            f'jetstream {{ store_dir: "{self.directory / f"n{i}"}" }}\n'
            f"cluster {{ name: raw-test\nlisten: 127.0.0.1:{self.route_ports[i]}\nroutes: [{routes}] }}\n"
        )
        self.processes[i] = subprocess.Popen(
            [NATS_SERVER, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self, i: int) -> None:
        process = self.processes[i]
        if process is not None:
            process.kill()
            process.wait(10)
            self.processes[i] = None

    def close(self) -> None:
        for i in range(3):
            self.stop(i)

    def wait_ready(self, timeout: float = 30) -> None:
        """Until JetStream answers with a meta leader (the cluster has formed)."""

        async def probe() -> None:
            nc = await nats.connect(self.urls, connect_timeout=1, max_reconnect_attempts=1)
            try:
                await nc.jetstream().account_info()
            finally:
                await nc.close()

        deadline = time.monotonic() + timeout
        while True:
            try:
                asyncio.run(asyncio.wait_for(probe(), 3))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not Path(NATS_SERVER).exists():
        pytest.skip(f"no nats-server binary at {NATS_SERVER}; install Debian's nats-server")
    c = Cluster(tmp_path_factory.mktemp("nats-cluster"))
    try:
        c.wait_ready()
        yield c
    finally:
        c.close()


@pytest.mark.slow
def test_a_replicated_log_writes_with_one_node_down_and_fails_clearly_with_two(cluster: Cluster) -> None:
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    with NatsWriteLog(name, cluster.urls, replicas=3, timeout=5) as log:
        assert log.append([b"all up"], epoch=1) == 1
        cluster.stop(2)
        deadline = time.monotonic() + 30
        while True:  # the stream may need a moment to elect a new leader if n2 led it
            try:
                assert log.append([b"one down"], epoch=1) == 2
                break
            except LogError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert [e.payload for e in log.read(0)] == [b"all up", b"one down"]
        cluster.stop(1)
        started = time.monotonic()
        with pytest.raises(LogError, match="needs 2 up to take a write"):
            log.append([b"two down"], epoch=1)
        assert time.monotonic() - started < 30
        cluster.start(1)
        cluster.start(2)
        cluster.wait_ready()
        deadline = time.monotonic() + 60
        while True:  # back to a majority: writes go on after the failed one
            try:
                last = log.append([b"back"], epoch=1)
                break
            except LogError:  # also FencedError: the failed append may have been stored after all
                if time.monotonic() > deadline:
                    raise
                with contextlib.suppress(LogError):
                    log.read(0)  # learn what is stored, as a writer does after a failed append
                time.sleep(1)
        payloads = [e.payload for e in log.read(0)]
        assert payloads[-1] == b"back" and last >= 3 and payloads.count(b"two down") <= 1
