"""Versions shared by the processes of one host: a host consumer writes indexed snapshots into a
directory, shared consumers map them; the host lock elects who computes, and another takes over."""

from __future__ import annotations

import functools
import gc
import mmap
import os
import signal
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow.errors import CorruptBlobError
from marrow.store import Producer, ReadState, Schema, read_header
from marrow.store._accel import speedups
from marrow.store.blobstore import BlobRef
from marrow.store.filesystem import FilesystemAnnouncer, FilesystemBlobStore, MappedFile
from marrow.store.host import BACKGROUND_NICE, LOCK, HostConsumer, SharedConsumer, filesystem_source
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flock and /proc are Linux here")

WAIT = 30.0  # seconds for what takes milliseconds, on a loaded machine that also starts processes


@dataclass(frozen=True)
class Show:
    __primary_key__ = "id"
    id: int
    name: str


SCHEMA = Schema.from_classes(Show)


def shows(n: int, tag: str = "") -> list[Show]:
    return [Show(i, f"Show {i}{tag}") for i in range(n)]


def names(state: ReadState) -> dict[int, str]:
    return {v.id: v.name for v in state["Show"]}


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT} s"
        time.sleep(0.01)


def test_the_host_consumer_writes_indexed_snapshots_announces_them_and_keeps_the_newest(
    tmp_path: Path,
) -> None:
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, blobs, announcer)
    producer.run_cycle(lambda w: w.add_all(shows(10)))
    local = FilesystemBlobStore(tmp_path)
    with HostConsumer(blobs, announcer, tmp_path, keep=2) as host:
        host.start()
        wait_until(lambda: host.shared == 1, "sharing version 1")
        for i in range(2, 5):
            producer.run_incremental(lambda inc, i=i: inc.add_or_modify(Show(i, f"renamed {i}")))
            wait_until(lambda i=i: host.shared == i, f"sharing version {i}")
        assert host.consumer.metrics.deltas_applied == 3  # the host applies deltas...
        assert [r.name for r in local.refs()] == ["snapshot-3", "snapshot-4"]  # ...and shares snapshots
        _, header = read_header(local.retrieve_snapshot(4)[1])  # type: ignore[index]
        assert "primary_key" in header["types"]["Show"]
        mapped = ReadState.from_snapshot(local.retrieve_snapshot(4)[1])  # type: ignore[index]
        assert mapped.tag == host.consumer.state.tag and names(mapped)[4] == "renamed 4"
        assert (tmp_path / LOCK).exists() and host.failures == 0


def test_a_version_already_shared_is_announced_not_rewritten(tmp_path: Path) -> None:
    """A host consumer that takes over finds its predecessor's snapshot: same version, maybe other
    bytes (an index carried through deltas keeps tombstones), and workers may be mapping it."""
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    Producer(SCHEMA, blobs, announcer).run_cycle(lambda w: w.add_all(shows(3)))
    predecessor = ReadState.from_snapshot(produced_snapshot(shows(3)))  # another state: the file stays
    FilesystemBlobStore(tmp_path).publish(BlobRef("snapshot", 1), predecessor.snapshot())
    before = (tmp_path / "snapshot-1").stat().st_ino
    with HostConsumer(blobs, announcer, tmp_path) as host:
        host.start()
        wait_until(lambda: host.shared == 1, "sharing version 1")
    assert (tmp_path / "snapshot-1").stat().st_ino == before and host.failures == 0


def test_only_one_host_consumer_runs_per_directory(tmp_path: Path) -> None:
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    Producer(SCHEMA, blobs, announcer).run_cycle(lambda w: w.add_all(shows(3)))
    first = HostConsumer(blobs, announcer, tmp_path, lock_interval=0.01)
    second = HostConsumer(blobs, announcer, tmp_path, lock_interval=0.01)
    first.start()
    wait_until(lambda: first.shared == 1, "the first host consumer sharing")
    second.start()
    time.sleep(0.2)
    assert second.consumer.version is None  # waiting for the lock, not following
    first.close()
    wait_until(lambda: second.shared == 1, "the second taking over")
    second.close()


def test_a_mapped_file_is_checked_without_becoming_resident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = ReadState.from_snapshot(produced_snapshot(shows(50_000)))
    store = FilesystemBlobStore(tmp_path)
    store.publish(BlobRef("snapshot", 1), state.snapshot())
    _, blob = store.retrieve_snapshot(1)  # type: ignore[misc]
    assert isinstance(blob, MappedFile)
    blob.crc32(len(blob) - 16)
    assert resident_kib(tmp_path / "snapshot-1") == 0
    checked: list[int] = []
    crc32 = MappedFile.crc32
    monkeypatch.setattr(MappedFile, "crc32", lambda self, end: checked.append(end) or crc32(self, end))
    read_header(blob)  # checks the CRC through crc32, not by reading the mapping
    assert checked == [len(blob) - 16]
    damaged = bytearray(state.snapshot())
    damaged[len(damaged) // 2] ^= 1
    store.publish(BlobRef("snapshot", 2), damaged)
    with pytest.raises(CorruptBlobError, match="checksum"):
        ReadState.from_snapshot(store.retrieve_snapshot(2)[1])  # type: ignore[index]


@pytest.mark.skipif(speedups is None, reason="the C accelerator is not built (MARROW_PURE or no compiler)")
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000), start=st.integers(0, 7), chunk=st.integers(0, 600))
def test_the_accelerators_crc32_is_zlibs(data: bytes, start: int, chunk: int) -> None:
    view = memoryview(data)[min(start, len(data)) :]  # any alignment of the first byte
    assert speedups.crc32(view, len(view), chunk) == zlib.crc32(view)
    assert speedups.crc32(view, len(view), chunk, -1, 1) == zlib.crc32(view)  # pausing between chunks
    assert speedups.crc32(view, len(view) // 2) == zlib.crc32(view[: len(view) // 2])
    with pytest.raises(ValueError, match="outside"):
        speedups.crc32(view, len(view) + 1)


def produced_snapshot(records: list[Show]) -> bytes:
    blobs = InMemoryBlobStore()
    Producer(SCHEMA, blobs, InMemoryAnnouncer()).run_cycle(lambda w: w.add_all(records))
    return bytes(blobs.retrieve_snapshot(1)[1])  # type: ignore[index]


def resident_kib(path: Path) -> int:
    """KiB of ``path``'s mappings resident in this process (0 when it is not mapped)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                inside = line.rstrip().endswith(str(path))
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


def mapped(path: Path) -> bool:
    with open("/proc/self/maps") as maps:
        return any(line.rstrip().endswith(str(path)) for line in maps)


# --- across processes --------------------------------------------------------------------------------


@pytest.fixture
def real(tmp_path: Path) -> Iterator[tuple[Path, Producer]]:
    """A filesystem store standing for the real one, with a producer publishing to it."""
    directory = tmp_path / "real"
    producer = Producer(SCHEMA, FilesystemBlobStore(directory), FilesystemAnnouncer(directory))
    producer.run_cycle(lambda w: w.add_all(shows(1000)))
    yield directory, producer


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[SharedConsumer]]:
    made: list[SharedConsumer] = []
    yield made
    for worker in made:
        worker.close()


def test_workers_map_what_one_host_consumer_computes(
    real: tuple[Path, Producer], tmp_path: Path, workers: list[SharedConsumer]
) -> None:
    directory, producer = real
    local = tmp_path / "local"
    for _ in range(2):  # two workers in one process: each competes for the lock like a process would
        workers.append(SharedConsumer(local, filesystem_source(directory), lock_interval=0.05))
        workers[-1].start()
    for worker in workers:
        worker.wait_for(1, WAIT)
    wait_until(lambda: sum(w.host is not None for w in workers) == 1, "one host consumer")
    for i in range(2, 6):
        version = producer.run_incremental(lambda inc, i=i: inc.add_or_modify(Show(i, f"v{i}"))).version  # type: ignore[union-attr]
        for worker in workers:
            assert names(worker.wait_for(version, WAIT))[i] == f"v{i}"
    for worker in workers:
        assert worker.metrics.deltas_applied == 0 and worker.metrics.snapshots_loaded == 5
        assert worker.state["Show"]._pk is not None  # adopted from the snapshot, not built
    wait_until(lambda: not mapped(local / "snapshot-1"), "the first version unmapped")


def test_another_worker_takes_over_when_the_host_consumer_dies(
    real: tuple[Path, Producer], tmp_path: Path, workers: list[SharedConsumer]
) -> None:
    directory, producer = real
    local = tmp_path / "local"
    for _ in range(2):
        workers.append(SharedConsumer(local, filesystem_source(directory), lock_interval=0.05))
        workers[-1].start()
        workers[-1].wait_for(1, WAIT)
    wait_until(lambda: sum(w.host is not None for w in workers) == 1, "one host consumer")
    first = next(w for w in workers if w.host is not None)
    killed = first.host
    assert killed is not None
    os.kill(killed.pid, signal.SIGKILL)  # mid-anything: the lock goes with the process
    killed.wait(WAIT)
    wait_until(
        lambda: any(w.host is not None and w.host is not killed and w.host.poll() is None for w in workers),
        "a new host consumer",
    )
    version = producer.run_cycle(lambda w: w.add_all(shows(1001))).version  # type: ignore[union-attr]
    for worker in workers:
        assert len(worker.wait_for(version, WAIT)["Show"]) == 1001
    # a worker that closes stops the host consumer it started; the other one takes over
    runner = next(w for w in workers if w.host is not None and w.host.poll() is None)
    runner.close()
    workers.remove(runner)
    assert runner.host is not None and runner.host.returncode == 0  # asked to stop, it stopped cleanly
    wait_until(
        lambda: workers[0].host is not None and workers[0].host.poll() is None, "the last worker's host"
    )
    version = producer.run_cycle(lambda w: w.add_all(shows(1002))).version  # type: ignore[union-attr]
    assert len(workers[0].wait_for(version, WAIT)["Show"]) == 1002


def test_a_source_the_host_process_cannot_import_is_refused(tmp_path: Path) -> None:
    def local_function() -> Any:
        raise AssertionError("never called")

    local_function.__module__ = "__main__"
    with pytest.raises(ValueError, match="importable module"):
        SharedConsumer(tmp_path, functools.partial(local_function))
    with pytest.raises(ValueError, match="cannot be pickled"):
        SharedConsumer(tmp_path, lambda: (InMemoryBlobStore(), InMemoryAnnouncer()))


def test_a_superseded_version_leaves_a_workers_memory_even_while_held(tmp_path: Path) -> None:
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, blobs, announcer)
    producer.run_cycle(lambda w: w.add_all(shows(100_000)))
    with (
        HostConsumer(blobs, announcer, tmp_path) as host,
        SharedConsumer(tmp_path, release_delay=0.01) as worker,
    ):
        host.start()
        worker.start()
        old = worker.wait_for(1, WAIT)
        assert names(old)[99_999] == "Show 99999"  # every page read: resident
        assert resident_kib(tmp_path / "snapshot-1") > 0
        producer.run_incremental(lambda inc: inc.add_or_modify(Show(1, "one")))
        assert names(worker.wait_for(2, WAIT))[1] == "one"
        wait_until(lambda: resident_kib(tmp_path / "snapshot-1") == 0, "the old version's pages released")
        assert names(old)[1] == "Show 1"  # a reader holding it still reads it, from the file
        del old
        gc.collect()
        assert not mapped(tmp_path / "snapshot-1")


def test_without_a_source_a_worker_only_follows_the_directory(tmp_path: Path) -> None:
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, blobs, announcer)
    producer.run_cycle(lambda w: w.add_all(shows(5)))
    with HostConsumer(blobs, announcer, tmp_path) as host, SharedConsumer(tmp_path) as worker:
        host.start()
        worker.start()
        assert len(worker.wait_for(1, WAIT)["Show"]) == 5
        producer.run_cycle(lambda w: w.add_all(shows(6)))
        assert len(worker.wait_for(2, WAIT)["Show"]) == 6
        assert worker.host is None
    gc.collect()


def test_a_worker_frees_each_superseded_version_at_the_next_release(tmp_path: Path) -> None:
    """Frozen at start (what was alive then), a worker's full collection after a switch is cheap,
    so it runs at every switch: the superseded version is unmapped without waiting for more."""
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, blobs, announcer)
    producer.run_cycle(lambda w: w.add_all(shows(1_000)))
    frozen_before = gc.get_freeze_count()
    with (
        HostConsumer(blobs, announcer, tmp_path) as host,
        SharedConsumer(tmp_path, release_delay=0.01) as worker,
    ):
        host.start()
        worker.start()
        assert gc.get_freeze_count() > frozen_before
        assert names(worker.wait_for(1, WAIT))[7] == "Show 7"
        assert mapped(tmp_path / "snapshot-1")
        producer.run_incremental(lambda inc: inc.add_or_modify(Show(1, "one")))
        assert names(worker.wait_for(2, WAIT))[1] == "one"
        wait_until(lambda: not mapped(tmp_path / "snapshot-1"), "the superseded version unmapped")
    if frozen_before == 0:
        assert gc.get_freeze_count() == 0  # what the worker froze is thawed when it closes


def test_a_worker_told_not_to_freeze_freezes_nothing(tmp_path: Path) -> None:
    frozen_before = gc.get_freeze_count()
    with SharedConsumer(tmp_path, freeze=False) as worker:
        FilesystemAnnouncer(tmp_path).announce(1)  # nothing to load: the refresh fails and retries
        worker.start()
        assert gc.get_freeze_count() == frozen_before


def test_dropping_a_mapped_files_pages_keeps_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    with open(path, "rb") as f:
        view = MappedFile(f.fileno(), 0, access=mmap.ACCESS_READ)
    assert sum(view[::4096]) == 0 and resident_kib(path) > 0
    view.drop(4096, 8192)  # a range, then the rest
    assert view[4096:4100] == bytes(range(4))
    view.drop()
    assert resident_kib(path) == 0
    assert view[:] == bytes(range(256)) * 4096  # read again from the file
    view.close()
    view.drop()  # closed: nothing to drop, no error


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="no SCHED_BATCH on this platform")
@pytest.mark.parametrize("background", [True, False])
def test_the_host_consumer_yields_the_cpu_to_serving_threads(tmp_path: Path, background: bool) -> None:
    """SCHED_BATCH at nice 10 for the host consumer's threads, none for the threads that serve."""
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    Producer(SCHEMA, blobs, announcer).run_cycle(lambda w: w.add_all(shows(3)))
    seen: list[tuple[int, int]] = []
    mine = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    with HostConsumer(blobs, announcer, tmp_path, background=background) as host:
        host.consumer.listeners.append(  # runs on the consumer's refresh thread, which run() started
            lambda old, new: seen.append((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)))
        )
        host.start()
        wait_until(lambda: host.shared == 1 and seen, "sharing version 1")
    assert seen[0] == ((os.SCHED_BATCH, max(BACKGROUND_NICE, mine[1])) if background else mine)
    assert (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)) == mine  # this thread: as it was
