"""The NATS JetStream blob store and announcements, against the real server on 127.0.0.1:4222.

Each test works in buckets of its own (a uuid in the name), deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path

import nats
import nats.js.errors
import pytest
from nats.js.kv import KeyValue
from test_blobstore import Announcement, AnnouncementContract, BlobStoreContract, Recorder

from marrow.errors import BlobError, CycleError, RefreshError
from marrow.store import Consumer, Producer, Schema
from marrow.store.blobstore import BlobRef, BlobStore
from marrow.store.filesystem import MappedFile
from marrow.store.memory import InMemoryAnnouncer
from marrow.store.nats import NatsAnnouncementWatcher, NatsAnnouncer, NatsBlobStore

SERVER = "nats://127.0.0.1:4222"
WAIT = 10.0  # seconds to wait for something that should take milliseconds
PATIENCE = 15.0  # the timeout of stores on the shared server, which other test runs may keep busy


def _unreachable_reason() -> str | None:
    """Why the tests cannot run here, or None when the server answers with JetStream on."""
    host, port = SERVER.removeprefix("nats://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as err:
        return f"no NATS server at {SERVER} ({err}); start it as the env skill says"

    async def probe() -> None:
        nc = await nats.connect(SERVER, connect_timeout=2, max_reconnect_attempts=1, reconnect_time_wait=0)
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), 5))
    except Exception as err:
        return f"the NATS server at {SERVER} does not answer with JetStream: {err!r}"
    return None


# Checked once, on import. Every test is skipped with the reason rather than the module as a whole,
# so that each skip carries the `nats` marker, which the suite's conftest counts under
# MARROW_REQUIRE_SERVICES=1 (CI must not pass by skipping).
_reason = _unreachable_reason()
pytestmark = [pytest.mark.nats, pytest.mark.skipif(_reason is not None, reason=_reason or "")]


def _delete_buckets(name: str) -> None:
    async def delete() -> None:
        nc = await nats.connect(SERVER, allow_reconnect=False)
        js = nc.jetstream()
        for stream in (f"OBJ_{name}", f"KV_{name}"):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(stream)
        await nc.close()

    asyncio.run(delete())


@pytest.fixture
def bucket() -> Iterator[str]:
    name = f"marrow-test-{uuid.uuid4().hex}"
    yield name
    _delete_buckets(name)


@pytest.fixture
def store(bucket: str) -> Iterator[NatsBlobStore]:
    with NatsBlobStore(SERVER, bucket=bucket, timeout=PATIENCE) as store:
        yield store


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SNAPSHOT = BlobRef("snapshot", 7)
DELTA = BlobRef("delta", 7, origin=6)
REVERSE = BlobRef("reverse", 6, origin=7)


# --- blob store ------------------------------------------------------------------------------------


class TestNatsBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, bucket: str) -> Iterator[BlobStore]:
        with NatsBlobStore(SERVER, bucket=bucket, timeout=PATIENCE) as store:
            yield store


class TestSpooledNatsBlobStore(BlobStoreContract):
    """The same promises when retrieved blobs go through a local file instead of the heap."""

    count = 3  # the atomicity test maps every blob it reads: fewer, to keep it quick

    @pytest.fixture
    def store(self, bucket: str, tmp_path: Path) -> Iterator[BlobStore]:
        with NatsBlobStore(SERVER, bucket=bucket, timeout=PATIENCE, spool=tmp_path / "spool") as store:
            yield store


def test_a_spooled_blob_is_mapped_from_an_unnamed_file(bucket: str, tmp_path: Path) -> None:
    data = os.urandom(3 * 128 * 1024 + 5)  # four chunks
    with NatsBlobStore(SERVER, bucket=bucket, timeout=PATIENCE, spool=tmp_path) as store:
        store.publish(SNAPSHOT, data)
        found = store.retrieve_snapshot(7)
        assert found is not None and isinstance(found[1], MappedFile) and found[1][:] == data
        assert list(tmp_path.iterdir()) == []  # unlinked at once: the mapping holds it
        found[1].close()


def test_objects_of_other_clients_are_read_and_strangers_skipped(store: NatsBlobStore, bucket: str) -> None:
    _put_raw_object(bucket, "README", b"not a blob")
    _put_raw_object(bucket, "snapshot-3", b"written by nats-py's own put")
    store.publish(SNAPSHOT, b"x" * 300_000)  # three chunks

    assert store.refs() == [BlobRef("snapshot", 3), SNAPSHOT]
    assert store.retrieve_snapshot(3) == (BlobRef("snapshot", 3), b"written by nats-py's own put")
    assert _get_raw_object(bucket, SNAPSHOT.name) == b"x" * 300_000


def _put_raw_object(bucket: str, name: str, data: bytes) -> None:
    async def put() -> None:
        nc = await nats.connect(SERVER, allow_reconnect=False)
        await (await nc.jetstream().object_store(bucket)).put(name, data)
        await nc.close()

    asyncio.run(put())


def _get_raw_object(bucket: str, name: str) -> bytes:
    async def get() -> bytes:
        nc = await nats.connect(SERVER, allow_reconnect=False)
        try:
            return bytes((await (await nc.jetstream().object_store(bucket)).get(name)).data or b"")
        finally:
            await nc.close()

    return asyncio.run(get())


def test_a_second_store_sees_what_the_first_publishes(store: NatsBlobStore, bucket: str) -> None:
    with NatsBlobStore(SERVER, bucket=bucket, timeout=PATIENCE) as other:
        store.publish(BlobRef("snapshot", 5), b"5")
        assert other.retrieve_snapshot(9) == (BlobRef("snapshot", 5), b"5")  # other's listing is cached

        store.publish(BlobRef("snapshot", 7), b"7")  # newer, but not in other's cached listing
        store.publish(DELTA, b"d")
        assert other.retrieve_snapshot(9) == (BlobRef("snapshot", 7), b"7")
        assert other.retrieve_delta(6) == (DELTA, b"d")

        store.remove(DELTA)  # other still lists it
        assert other.retrieve_delta(6) is None


def test_a_20_mb_blob_round_trips(store: NatsBlobStore) -> None:
    data = os.urandom(20 * 1024 * 1024)

    started = time.perf_counter()
    store.publish(SNAPSHOT, data)
    published = time.perf_counter()
    found = store.retrieve_snapshot(7)
    retrieved = time.perf_counter()

    assert found is not None
    assert found[0] == SNAPSHOT
    assert bytes(found[1]) == data
    print(f"\n20 MB: publish {published - started:.2f} s, retrieve {retrieved - published:.2f} s")


def test_a_closed_store_refuses_work(bucket: str) -> None:
    store = NatsBlobStore(SERVER, bucket=bucket, timeout=PATIENCE)
    store.close()
    store.close()

    with pytest.raises(BlobError, match="closed"):
        store.publish(SNAPSHOT, b"s")


# --- announcements ----------------------------------------------------------------------------------


@pytest.fixture
def announcer(bucket: str) -> Iterator[NatsAnnouncer]:
    with NatsAnnouncer(SERVER, bucket=bucket, timeout=PATIENCE) as announcer:
        yield announcer


@pytest.fixture
def watcher(bucket: str, announcer: NatsAnnouncer) -> Iterator[NatsAnnouncementWatcher]:
    with NatsAnnouncementWatcher(SERVER, bucket=bucket, timeout=PATIENCE) as watcher:
        yield watcher


class TestNatsAnnouncement(AnnouncementContract):
    @pytest.fixture
    def announcement(
        self, announcer: NatsAnnouncer, watcher: NatsAnnouncementWatcher
    ) -> Iterator[Announcement]:
        yield announcer, watcher


def test_callbacks_run_on_the_watchers_delivery_thread(
    announcer: NatsAnnouncer, watcher: NatsAnnouncementWatcher
) -> None:
    names: list[str] = []
    recorder = Recorder()
    watcher.subscribe(lambda version: names.append(threading.current_thread().name))
    watcher.subscribe(recorder)
    announcer.announce(1)

    recorder.wait_for(1)
    assert names == ["marrow-nats-announcements"]


def test_invalid_values_are_logged_and_ignored(
    bucket: str, announcer: NatsAnnouncer, watcher: NatsAnnouncementWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    heard = Recorder()
    watcher.subscribe(heard)
    announcer.announce(1)
    heard.wait_for(1)

    for value in (b"not a version", b"-3", b" 7", b"5_0", b""):
        _put_raw_key(bucket, "version", value)
    announcer.announce(2)

    assert heard.wait_for(2) == [1, 2]
    assert sum("not a version" in message for message in caplog.messages) >= 5
    _put_raw_key(bucket, "version", b"garbage")
    assert watcher.latest() == 2  # the newest valid version heard


def _put_raw_key(bucket: str, key: str, value: bytes) -> None:
    async def put() -> None:
        nc = await nats.connect(SERVER, allow_reconnect=False)
        await (await nc.jetstream().key_value(bucket)).put(key, value)
        await nc.close()

    asyncio.run(put())


def test_a_callback_may_call_the_watcher_back(
    announcer: NatsAnnouncer, watcher: NatsAnnouncementWatcher
) -> None:
    latest: list[int | None] = []
    done = threading.Event()

    def callback(version: int) -> None:
        latest.append(watcher.latest())
        done.set()

    watcher.subscribe(callback)
    announcer.announce(8)

    assert done.wait(WAIT)
    assert latest == [8]


def test_a_callback_may_close_the_watcher(bucket: str, announcer: NatsAnnouncer) -> None:
    watcher = NatsAnnouncementWatcher(SERVER, bucket=bucket, timeout=PATIENCE)
    closed = threading.Event()

    def close(version: int) -> None:
        watcher.close()
        closed.set()

    watcher.subscribe(close)
    announcer.announce(1)

    assert closed.wait(WAIT)
    with pytest.raises(BlobError, match="closed"):
        watcher.latest()
    watcher.close()


def _watch_in_another_process(bucket: str, ready: Event, heard: multiprocessing.Queue[int]) -> None:
    with NatsAnnouncementWatcher(SERVER, bucket=bucket, timeout=PATIENCE) as watcher:
        got = threading.Event()

        def callback(version: int) -> None:
            heard.put(version)
            got.set()

        watcher.subscribe(callback)
        ready.set()
        got.wait(WAIT)


def test_a_watcher_in_another_process_hears_an_announcement(bucket: str, announcer: NatsAnnouncer) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    heard: multiprocessing.Queue[int] = context.Queue()
    child = context.Process(target=_watch_in_another_process, args=(bucket, ready, heard))
    child.start()
    try:
        assert ready.wait(30), "the watcher process did not start"
        announcer.announce(42)
        assert heard.get(timeout=WAIT) == 42
        child.join(WAIT)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        heard.close()
        heard.join_thread()


def test_announce_to_callback_latency(announcer: NatsAnnouncer, watcher: NatsAnnouncementWatcher) -> None:
    arrived: dict[int, float] = {}
    all_arrived = threading.Event()

    def callback(version: int) -> None:
        arrived[version] = time.perf_counter()
        if len(arrived) == 50:
            all_arrived.set()

    watcher.subscribe(callback)
    sent: dict[int, float] = {}
    for version in range(1, 51):
        sent[version] = time.perf_counter()
        announcer.announce(version)
        time.sleep(0.002)  # one at a time, as a producer announces

    assert all_arrived.wait(WAIT), sorted(set(sent) - set(arrived))
    latencies = sorted((arrived[v] - sent[v]) * 1000 for v in sent)
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"\nannounce -> callback over 50: p50 {statistics.median(latencies):.2f} ms, p99 {p99:.2f} ms")


# --- an unreachable server ---------------------------------------------------------------------------


OPENERS: list[Callable[[str], object]] = [
    lambda server: NatsBlobStore(server, bucket="never", timeout=1.0),
    lambda server: NatsAnnouncer(server, bucket="never", timeout=1.0),
    lambda server: NatsAnnouncementWatcher(server, bucket="never", timeout=1.0),
]


@pytest.mark.parametrize("open_", OPENERS, ids=["blob store", "announcer", "watcher"])
def test_a_closed_port_is_a_blob_error_at_once(open_: Callable[[str], object]) -> None:
    server = f"nats://127.0.0.1:{_closed_port()}"
    started = time.perf_counter()
    with pytest.raises(BlobError, match=f"cannot reach the NATS server at {server}: ConnectionRefused"):
        open_(server)
    assert time.perf_counter() - started < 5  # not nats-py's minutes of retries


@pytest.mark.parametrize("open_", OPENERS, ids=["blob store", "announcer", "watcher"])
def test_a_silent_server_is_a_blob_error_within_the_timeout(open_: Callable[[str], object]) -> None:
    with socket.socket() as listener:  # accepts connections, never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        server = f"nats://127.0.0.1:{listener.getsockname()[1]}"
        started = time.perf_counter()
        with pytest.raises(BlobError, match=f"NATS server at {server}"):
            open_(server)
        assert time.perf_counter() - started < 5  # timeout=1.0, never a hang


# --- a server that goes away and comes back ---------------------------------------------------------


class PrivateServer:
    """A nats-server of the test's own on a free loopback port, so that it can be stopped."""

    def __init__(self, store_dir: str) -> None:
        self.port = _closed_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._args = ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", store_dir]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(self._args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.1):
                return
            time.sleep(0.02)
        raise RuntimeError(f"nats-server did not start on port {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(WAIT)
            self._process = None

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, as when a machine dies."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(WAIT)
            self._process = None


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[PrivateServer]:
    if shutil.which("nats-server") is None:
        pytest.skip("no nats-server binary on PATH to start a server of the test's own")
    server = PrivateServer(str(tmp_path))
    server.start()
    yield server
    server.stop()


def _until_it_works(action: Callable[[], object]) -> None:
    deadline = time.monotonic() + WAIT
    while True:
        try:
            action()
            return
        except BlobError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _revision(server: str, bucket: str, key: str) -> int | None:
    """The stream sequence of the key's current value: how many values the bucket has taken."""
    return _entry(server, bucket, key).revision


def _entry(server: str, bucket: str, key: str) -> KeyValue.Entry:
    """The key's current entry, read by a client of its own."""

    async def get() -> KeyValue.Entry:
        nc = await nats.connect(server, allow_reconnect=False)
        try:
            return await (await nc.jetstream().key_value(bucket)).get(key)
        finally:
            await nc.close()

    return asyncio.run(get())


def test_a_server_restart_fails_calls_fast_then_everything_resumes(private_server: PrivateServer) -> None:
    url = private_server.url
    with (
        NatsBlobStore(url, bucket="blobs", timeout=2.0) as store,
        NatsAnnouncer(url, bucket="announce", timeout=2.0) as announcer,
        NatsAnnouncementWatcher(url, bucket="announce", timeout=2.0) as watcher,
    ):
        heard = Recorder()
        watcher.subscribe(heard)
        store.publish(SNAPSHOT, b"before")
        announcer.announce(1)
        heard.wait_for(1)

        private_server.stop()
        started = time.perf_counter()
        with pytest.raises(BlobError, match=f"NATS at {url}"):
            announcer.announce(99)
        with pytest.raises(BlobError, match=f"NATS at {url}"):
            store.publish(DELTA, b"while down")
        assert time.perf_counter() - started < 5  # two calls, each bounded by timeout=2.0

        private_server.start()
        _until_it_works(lambda: announcer.announce(2))
        assert heard.wait_for(2) == [1, 2]
        assert watcher.latest() == 2
        assert _revision(url, "announce", "version") == 2  # 99, refused while down, was not sent later
        assert store.retrieve_snapshot(7) == (SNAPSHOT, b"before")
        store.publish(DELTA, b"after")
        assert store.refs() == [DELTA, SNAPSHOT]


@dataclass(frozen=True)
class Show:
    __primary_key__ = "id"
    id: int
    name: str


class Held:
    """An announcer that keeps the version back until :meth:`release` (announcements go in memory)."""

    def __init__(self, announcer: InMemoryAnnouncer) -> None:
        self.announcer, self.version = announcer, 0

    def announce(self, version: int) -> None:
        self.version = version

    def release(self) -> None:
        self.announcer.announce(self.version)


def test_consumers_keep_serving_while_the_nats_store_is_down_and_catch_up(
    private_server: PrivateServer,
) -> None:
    schema = Schema.from_classes(Show)
    announcements = InMemoryAnnouncer()  # only the blob store goes down; announcements still arrive
    held = Held(announcements)
    with (
        NatsBlobStore(private_server.url, bucket="blobs", timeout=1.0) as blobs,
        NatsBlobStore(private_server.url, bucket="blobs", timeout=1.0) as theirs,
    ):
        producer = Producer(schema, blobs, held)
        producer.run_cycle(lambda w: w.add_all([Show(i, f"show {i}") for i in range(10)]))
        held.release()
        consumer = Consumer(theirs, announcements, min_backoff=0.05, max_backoff=0.4)
        with consumer:
            consumer.start()
            consumer.wait_for(1, WAIT)
            producer.run_cycle(lambda w: w.add_all([Show(i, f"show {i}") for i in range(11)]))
            private_server.kill()
            held.release()  # version 2 is announced; its blobs are on a server that is gone
            deadline = time.monotonic() + WAIT
            while consumer.metrics.failures < 3:
                assert time.monotonic() < deadline, "the consumer did not retry"
                time.sleep(0.05)
            assert consumer.version == 1 and len(consumer.state["Show"]) == 10  # still serving
            assert f"NATS at {private_server.url}" in (consumer.metrics.last_error or "")
            with pytest.raises(RefreshError, match="keeping 1"):
                consumer.refresh(2)
            failures = consumer.metrics.failures
            time.sleep(1.0)
            assert consumer.metrics.failures - failures <= 5  # backing off (0.4 s at most), not spinning
            with pytest.raises(CycleError):  # the producer cannot publish either, and announces nothing
                producer.run_cycle(lambda w: w.add_all([Show(i, "x") for i in range(3)]))
            assert held.version == 2

            private_server.start()
            assert len(consumer.wait_for(2, WAIT)["Show"]) == 11  # caught up by the delta
            assert consumer.metrics.deltas_applied == 1 and consumer.metrics.last_error is None


# --- announcements that carry a delta -------------------------------------------------------------


class Fetches:
    """A blob retriever that counts the deltas fetched from the store beneath it."""

    def __init__(self, store: NatsBlobStore) -> None:
        self.store, self.deltas = store, 0

    def retrieve_snapshot(self, version: int) -> tuple[BlobRef, object] | None:
        return self.store.retrieve_snapshot(version)

    def retrieve_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, object] | None:
        self.deltas += 1
        return self.store.retrieve_delta(origin, toward)

    def retrieve_reverse_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, object] | None:
        return self.store.retrieve_reverse_delta(origin, toward)


def _shows(n: int, tag: str = "") -> list[Show]:
    return [Show(i, f"show {i}{tag}") for i in range(n)]


def test_a_consumer_one_version_behind_applies_the_carried_delta_without_fetching(
    bucket: str, store: NatsBlobStore, announcer: NatsAnnouncer, watcher: NatsAnnouncementWatcher
) -> None:
    producer = Producer(Schema.from_classes(Show), store, announcer)
    producer.run_cycle(lambda w: w.add_all(_shows(10)))
    fetches = Fetches(store)
    with Consumer(fetches, watcher) as consumer:  # type: ignore[arg-type]
        consumer.start()
        consumer.wait_for(1, WAIT)
        producer.run_incremental(lambda inc: inc.add_or_modify(Show(3, "three")))
        state = consumer.wait_for(2, WAIT)
        assert state["Show"].get(3).name == "three" and len(state["Show"]) == 10
        assert fetches.deltas == 0 and consumer.metrics.deltas_applied == 1
    assert BlobRef("delta", 2, 1) in store.refs()  # published all the same, for consumers further behind
    assert watcher.carried_delta(1, 2) is not None
    assert watcher.carried_delta(1, 1) is None  # it leads past version 1: not for a consumer pinned there
    assert watcher.latest() == 2


def test_a_delta_larger_than_max_carried_is_announced_alone_and_fetched(
    bucket: str, store: NatsBlobStore, watcher: NatsAnnouncementWatcher
) -> None:
    with NatsAnnouncer(SERVER, bucket=bucket, timeout=PATIENCE, max_carried=0) as announcer:
        producer = Producer(Schema.from_classes(Show), store, announcer)
        producer.run_cycle(lambda w: w.add_all(_shows(10)))
        fetches = Fetches(store)
        with Consumer(fetches, watcher) as consumer:  # type: ignore[arg-type]
            consumer.start()
            consumer.wait_for(1, WAIT)
            producer.run_incremental(lambda inc: inc.add_or_modify(Show(3, "three")))
            assert consumer.wait_for(2, WAIT)["Show"].get(3).name == "three"
            assert fetches.deltas == 1
    assert _entry(SERVER, bucket, "version").value == b"2"
    with pytest.raises(ValueError, match="max_carried"):
        NatsAnnouncer(SERVER, bucket=bucket, max_carried=-1)


def test_a_damaged_carried_delta_is_dropped_and_the_delta_fetched(
    bucket: str,
    store: NatsBlobStore,
    announcer: NatsAnnouncer,
    watcher: NatsAnnouncementWatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = Held(announcer)  # type: ignore[arg-type]
    producer = Producer(Schema.from_classes(Show), store, held)
    producer.run_cycle(lambda w: w.add_all(_shows(10)))
    held.release()
    fetches = Fetches(store)
    with Consumer(fetches, watcher) as consumer:  # type: ignore[arg-type]
        consumer.start()
        consumer.wait_for(1, WAIT)
        producer.run_incremental(lambda inc: inc.add_or_modify(Show(3, "three")))  # published, held
        _, delta = store.retrieve_delta(1, 2)  # type: ignore[misc]
        damaged = bytearray(bytes(delta))
        damaged[len(damaged) // 2] ^= 0xFF
        _put_raw_key(bucket, "version", b"2\ndelta-1-2\n" + bytes(damaged))
        assert consumer.wait_for(2, WAIT)["Show"].get(3).name == "three"
        assert fetches.deltas == 1 and consumer.metrics.failures == 0
    assert watcher.carried_delta(1, 2) is None
    assert any("dropping the delta-1-2" in m and "checksum" in m for m in caplog.messages)


@pytest.mark.parametrize(
    "value",
    [
        b"2\ndelta-1-3\nMRRW",
        b"2\nsnapshot-2\nMRRW",
        b"2\nreverse-1-2\nMRRW",
        b"2\ndelta-1-2",
        b"2\n\xff\nx",
        b"x\n",
    ],
)
def test_a_value_that_names_its_carried_delta_wrongly_is_not_a_version(
    bucket: str, announcer: NatsAnnouncer, watcher: NatsAnnouncementWatcher, value: bytes
) -> None:
    heard = Recorder()
    watcher.subscribe(heard)
    announcer.announce(1)
    heard.wait_for(1)
    _put_raw_key(bucket, "version", value)
    announcer.announce(3)
    assert heard.wait_for(3) == [1, 3]
