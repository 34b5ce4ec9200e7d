"""Producer cycles and consumers following them, over the in-memory blob store and announcer."""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
import signal
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_host import wait_until

from marrow.errors import CycleError, RefreshError
from marrow.store import Schema
from marrow.store.blobstore import BlobRef, Buffer
from marrow.store.consumer import Consumer
from marrow.store.filesystem import FilesystemAnnouncementWatcher, FilesystemAnnouncer, FilesystemBlobStore
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore
from marrow.store.producer import MinimumCount, Producer, RecordCountChange


@dataclass(frozen=True)
class Show:
    __primary_key__ = "id"
    id: int
    name: str
    seasons: int


SCHEMA = Schema.from_classes(Show)


def shows(n: int, tag: str = "") -> list[Show]:
    return [Show(i, f"Show {i}{tag}", i % 7) for i in range(n)]


def populate(records: list[Show]) -> Any:
    return lambda w: w.add_all(records)


@pytest.fixture
def world() -> tuple[InMemoryBlobStore, InMemoryAnnouncer, Producer]:
    store, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    return store, announcer, Producer(SCHEMA, store, announcer)


def names(consumer: Consumer) -> dict[int, str]:
    return {v.id: v.name for v in consumer.state["Show"]}


def test_cycles_publish_snapshot_delta_and_reverse_then_announce(world: Any) -> None:
    store, announcer, producer = world
    first = producer.run_cycle(populate(shows(10)))
    assert first is not None and announcer.latest() == first.version
    assert store.refs() == [BlobRef("snapshot", first.version)]
    second = producer.run_cycle(populate(shows(12)))
    assert second is not None and second.version > first.version
    assert set(store.refs()) == {
        BlobRef("snapshot", first.version),
        BlobRef("snapshot", second.version),
        BlobRef("delta", second.version, first.version),
        BlobRef("reverse", first.version, second.version),
    }
    assert second.counts == {"Show": 12}


def test_a_cycle_with_no_change_publishes_nothing(world: Any) -> None:
    store, announcer, producer = world
    first = producer.run_cycle(populate(shows(5)))
    before = store.refs()
    assert producer.run_cycle(populate(shows(5))) is None
    assert store.refs() == before and announcer.latest() == first.version


def test_incremental_cycle_adds_modifies_and_deletes_by_key(world: Any) -> None:
    store, announcer, producer = world
    producer.run_cycle(populate(shows(5)))

    def changes(inc: Any) -> None:
        inc.add_or_modify(Show(1, "Renamed", 9))
        inc.add_or_modify(Show(99, "New", 1))
        assert inc.delete("Show", 2)
        assert not inc.delete("Show", 1234)

    report = producer.run_incremental(changes)
    consumer = Consumer(store, announcer)
    consumer.refresh()
    assert report is not None and consumer.version == report.version
    assert names(consumer) == {0: "Show 0", 1: "Renamed", 3: "Show 3", 4: "Show 4", 99: "New"}


def test_a_failed_validator_rolls_back_and_announces_nothing(world: Any) -> None:
    store, announcer, _ = world
    producer = Producer(SCHEMA, store, announcer, validators=[RecordCountChange("Show", max_decrease=0.5)])
    first = producer.run_cycle(populate(shows(10)))
    refs = store.refs()
    with pytest.raises(CycleError, match="record count changes from 10 to 2"):
        producer.run_cycle(populate(shows(2)))
    assert store.refs() == refs and announcer.latest() == first.version
    # the producer is still on version 1: the next good cycle is a delta from it
    third = producer.run_cycle(populate(shows(8)))
    assert third is not None
    assert BlobRef("delta", third.version, first.version) in store.refs()


def test_minimum_count_validator(world: Any) -> None:
    store, announcer, _ = world
    producer = Producer(SCHEMA, store, announcer, validators=[MinimumCount("Show", 3)])
    with pytest.raises(CycleError, match="fewer than the minimum 3"):
        producer.run_cycle(populate(shows(2)))
    assert announcer.latest() is None and store.refs() == []


def test_populate_errors_roll_back(world: Any) -> None:
    producer = world[2]
    producer.run_cycle(populate(shows(3)))

    def broken(w: Any) -> None:
        w.add(Show(1, "x", 1))
        raise ValueError("source unavailable")

    with pytest.raises(CycleError, match="source unavailable"):
        producer.run_cycle(broken)
    assert producer.run_cycle(populate(shows(3))) is None  # nothing half-added survived


class FailingStore(InMemoryBlobStore):
    """Fails to publish deltas while ``down`` is set (a store outage in mid-publish)."""

    down = False

    def publish(self, ref: BlobRef, data: Buffer) -> None:
        if self.down and ref.kind != "snapshot":
            raise OSError("blob store unreachable")
        super().publish(ref, data)


def test_publish_failure_midway_rolls_back_and_the_next_cycle_recovers() -> None:
    store, announcer = FailingStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, store, announcer)
    first = producer.run_cycle(populate(shows(4)))
    store.down = True
    with pytest.raises(CycleError, match="unreachable"):
        producer.run_cycle(populate(shows(6)))
    assert announcer.latest() == first.version
    store.down = False
    again = producer.run_cycle(populate(shows(6)))
    assert again is not None and again.version > first.version + 1  # a fresh version per attempt
    consumer = Consumer(store, announcer)
    consumer.refresh(first.version)
    assert consumer.refresh().version == again.version and len(consumer.state["Show"]) == 6


def test_restarted_producer_resumes_so_the_next_cycle_is_a_delta(world: Any) -> None:
    store, announcer, producer = world
    producer.run_cycle(populate(shows(5)))
    v2 = producer.run_cycle(populate(shows(6)))
    consumer = Consumer(store, announcer)
    consumer.refresh()
    restarted = Producer(SCHEMA, store, announcer)
    restarted.restore(store, announcer.latest())
    v3 = restarted.run_cycle(populate(shows(7)))
    assert v3 is not None and v3.version > v2.version
    assert BlobRef("delta", v3.version, v2.version) in store.refs()
    consumer.refresh()
    assert consumer.metrics.snapshots_loaded == 1 and consumer.metrics.deltas_applied == 1
    assert len(consumer.state["Show"]) == 7


def test_with_snapshot_every_a_snapshot_is_published_every_nth_version_and_deltas_lead_between() -> None:
    store, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, store, announcer, snapshot_every=3, keep_snapshots=10)
    versions = [producer.run_cycle(populate(shows(3 + i))).version for i in range(7)]  # type: ignore[union-attr]
    snapshots = sorted(r.version for r in store.refs() if r.kind == "snapshot")
    assert snapshots == [versions[0], versions[3], versions[6]]
    assert all(BlobRef("delta", v, u) in store.refs() for u, v in itertools.pairwise(versions))
    fresh = Consumer(store, announcer)
    fresh.refresh(versions[5])  # between snapshots: the one before, then two deltas
    assert fresh.metrics.snapshots_loaded == 1 and fresh.metrics.deltas_applied == 2
    assert len(fresh.state["Show"]) == 8
    restarted = Producer(SCHEMA, store, announcer, snapshot_every=3)
    restarted.restore(store, versions[5])  # on a version with no snapshot: the next cycle publishes one
    nxt = restarted.run_cycle(populate(shows(20)))
    assert nxt is not None and [r.kind for r in nxt.published] == ["snapshot", "delta", "reverse"]
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="snapshot_every"):
            Producer(SCHEMA, store, announcer, snapshot_every=bad)  # type: ignore[arg-type]


def test_cleanup_with_snapshot_every_keeps_the_deltas_from_the_oldest_kept_snapshot() -> None:
    store, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, store, announcer, snapshot_every=2, keep_snapshots=2)
    versions = [producer.run_cycle(populate(shows(3 + i))).version for i in range(8)]  # type: ignore[union-attr]
    snapshots = sorted(r.version for r in store.refs() if r.kind == "snapshot")
    assert snapshots == [versions[4], versions[6]]
    consumer = Consumer(store, announcer)
    consumer.refresh()  # the newest snapshot and the delta after it
    assert consumer.version == versions[7] and len(consumer.state["Show"]) == 10
    oldest = Consumer(store, announcer)
    oldest.refresh(versions[5])  # from the oldest kept snapshot, forward
    assert oldest.metrics.deltas_applied == 1


def test_cleanup_keeps_the_last_snapshots(world: Any) -> None:
    store, announcer, _ = world
    producer = Producer(SCHEMA, store, announcer, keep_snapshots=2)
    versions = [producer.run_cycle(populate(shows(3 + i))).version for i in range(5)]
    snapshots = sorted(r.version for r in store.refs() if r.kind == "snapshot")
    assert snapshots == versions[-2:]
    assert all(min(r.version, r.origin or r.version) >= versions[-2] for r in store.refs())


def test_cleanup_runs_before_publishing_so_it_never_removes_the_announced_snapshot(world: Any) -> None:
    """Room is made before a cycle publishes (not while consumers fetch what it announces); blobs of
    a version never announced do not count, so the announced snapshot stays while the next is written."""
    store, announcer, _ = world
    producer = Producer(SCHEMA, store, announcer, keep_snapshots=1)
    first = producer.run_cycle(populate(shows(3))).version
    store.publish(BlobRef("snapshot", first + 50), b"left by an attempt that never announced")
    removed: list[tuple[BlobRef, int | None]] = []  # (blob, the version announced when it went)
    remove = store.remove

    def watched(ref: BlobRef) -> None:
        removed.append((ref, announcer.latest()))
        remove(ref)

    store.remove = watched  # type: ignore[method-assign]
    second = producer.run_cycle(populate(shows(4))).version
    assert removed == []  # the announced snapshot stayed while the next was written
    snapshots = sorted(r.version for r in store.refs() if r.kind == "snapshot")
    assert second in snapshots and first + 50 in snapshots
    producer.run_cycle(populate(shows(5)))
    assert (BlobRef("snapshot", first), second) in removed  # before the third cycle announced


def test_a_cleanup_that_cannot_list_the_store_does_not_fail_the_cycle(world: Any) -> None:
    store, announcer, producer = world
    producer.run_cycle(populate(shows(3)))

    def down() -> list[BlobRef]:
        raise OSError("store unreachable")

    store.refs = down  # type: ignore[method-assign]
    report = producer.run_cycle(populate(shows(4)))
    assert report is not None and announcer.latest() == report.version


def test_consumer_follows_deltas_pins_and_rolls_back(world: Any) -> None:
    store, announcer, producer = world
    v = [producer.run_cycle(populate(shows(3 + i, f"/{i}"))).version for i in range(4)]
    seen: list[tuple[int | None, int | None]] = []
    consumer = Consumer(
        store, announcer, listeners=[lambda old, new: seen.append((old and old.version, new.version))]
    )
    consumer.refresh(v[0])
    consumer.refresh()
    assert consumer.version == v[3] and consumer.metrics.deltas_applied == 3
    consumer.pin(v[1])  # back over reverse deltas
    assert consumer.version == v[1] and names(consumer)[0] == "Show 0/1"
    assert consumer.metrics.snapshots_loaded == 1
    producer.run_cycle(populate(shows(9)))
    assert consumer.refresh().version == v[1]  # pinned: announcements are ignored
    consumer.unpin()
    assert len(consumer.state["Show"]) == 9
    assert seen[0] == (None, v[0]) and seen[-1][0] == v[1]


def test_wait_for_returns_once_the_listeners_were_told(world: Any) -> None:
    """A caller who waits for a version may rely on what the listeners do with it (a local client
    moving its overlay onto it): wait_for returns only after they ran."""
    store, announcer, producer = world
    version = producer.run_cycle(populate(shows(3))).version
    told = threading.Event()

    def slow(old: Any, new: Any) -> None:
        time.sleep(0.2)  # the new version is already served while this runs
        told.set()

    consumer = Consumer(store, announcer, listeners=[slow])
    refreshing = threading.Thread(target=consumer.refresh)
    refreshing.start()
    try:
        assert consumer.wait_for(version).version == version
        assert told.is_set()
    finally:
        refreshing.join()


def test_a_long_chain_loads_a_snapshot_instead(world: Any) -> None:
    store, announcer, _ = world
    producer = Producer(SCHEMA, store, announcer, keep_snapshots=10)
    first = producer.run_cycle(populate(shows(2))).version
    for i in range(5):
        producer.run_cycle(populate(shows(3 + i)))
    consumer = Consumer(store, announcer, max_delta_chain=2)
    consumer.refresh(first)
    consumer.refresh()
    assert consumer.metrics.snapshots_loaded == 2 and len(consumer.state["Show"]) == 7


class BreakableStore(InMemoryBlobStore):
    """Serves corrupt or no deltas while ``mode`` says so."""

    mode = "ok"

    def retrieve_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        found = super().retrieve_delta(origin, toward)
        if found is None or self.mode == "ok":
            return found
        if self.mode == "missing":
            return None
        ref, data = found
        damaged = bytearray(data)
        damaged[len(damaged) // 2] ^= 0xFF
        return ref, bytes(damaged)

    def retrieve_snapshot(self, version: int) -> tuple[BlobRef, Buffer] | None:
        if self.mode == "down":
            raise OSError("store unreachable")
        return super().retrieve_snapshot(version)


@pytest.mark.parametrize("mode", ["corrupt", "missing"])
def test_failed_refresh_keeps_the_current_version(mode: str) -> None:
    store, announcer = BreakableStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, store, announcer)
    producer.run_cycle(populate(shows(3)))
    consumer = Consumer(store, announcer)
    held = consumer.refresh()
    producer.run_cycle(populate(shows(4)))
    store.mode = mode
    if mode == "missing":  # falls back to the snapshot of the new version: still reaches it
        assert consumer.refresh().version == announcer.latest()
        return
    with pytest.raises(RefreshError):
        consumer.refresh()
    assert consumer.state is held and consumer.metrics.failures == 1
    store.mode = "ok"
    assert consumer.refresh().version == announcer.latest()


def test_background_refresh_retries_until_the_store_is_back() -> None:
    store, announcer = BreakableStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, store, announcer)
    first = producer.run_cycle(populate(shows(3)))
    consumer = Consumer(store, announcer, max_delta_chain=0, min_backoff=0.01, max_backoff=0.05)
    with consumer:
        consumer.start()
        consumer.wait_for(first.version, timeout=5)
        store.mode = "down"  # snapshots unreachable, and max_delta_chain=0 needs them
        second = producer.run_cycle(populate(shows(5)))
        event = threading.Event()
        threading.Timer(0.2, lambda: (setattr(store, "mode", "ok"), event.set())).start()
        state = consumer.wait_for(second.version, timeout=5)
        assert event.is_set() and consumer.metrics.failures >= 1
        assert len(state["Show"]) == 5


def test_reads_during_refresh_see_one_whole_version(world: Any) -> None:
    store, announcer, producer = world
    producer.run_cycle(populate(shows(200, "/a")))
    consumer = Consumer(store, announcer)
    consumer.refresh()
    stop = threading.Event()
    mixed: list[set[str]] = []

    def reader() -> None:
        while not stop.is_set():
            state = consumer.state
            tags = {v.name.split("/")[1] for v in state["Show"]}
            if len(tags) != 1:
                mixed.append(tags)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for tag in "bcdefgh":
        producer.run_cycle(populate(shows(200, f"/{tag}")))
        consumer.refresh()
    stop.set()
    for t in threads:
        t.join()
    assert not mixed


def test_consumer_without_anything_loaded_says_so(world: Any) -> None:
    store, announcer, _ = world
    consumer = Consumer(store, announcer)
    with pytest.raises(RefreshError, match="nothing loaded"):
        _ = consumer.state
    with pytest.raises(RefreshError, match="no version announced"):
        consumer.refresh()


def test_history_records_what_each_refresh_added_removed_and_changed(world: Any) -> None:
    from marrow.store.history import History, diff

    store, announcer, producer = world
    history = History(limit=2)
    consumer = Consumer(store, announcer, listeners=[history])
    producer.run_cycle(populate(shows(4)))
    consumer.refresh()
    producer.run_incremental(lambda inc: (inc.add_or_modify(Show(1, "One", 1)), inc.delete("Show", 2)))
    consumer.refresh()
    producer.run_incremental(lambda inc: inc.add_or_modify(Show(7, "Seven", 7)))
    consumer.refresh()
    first, second = history.entries()  # limit 2: the initial load has rolled off
    assert first.types["Show"].changed == [1] and first.types["Show"].removed == [2]
    assert second.types["Show"].added == [7] and not second.types["Show"].changed
    # any two versions, either way round
    v1 = consumer.refresh(first.before)
    both = diff(consumer.refresh(second.after), v1).as_dict()
    assert both["types"]["Show"]["removed_keys"] == [7] and both["types"]["Show"]["added_keys"] == [2]


class CountingStore(InMemoryBlobStore):
    """Counts how often the store is listed."""

    listings = 0

    def refs(self) -> list[BlobRef]:
        self.listings += 1
        return super().refs()


def test_a_consumer_heading_for_a_version_fetches_its_delta_by_name() -> None:
    store, announcer = CountingStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, store, announcer, keep_snapshots=100)
    producer.run_cycle(populate(shows(3)))
    consumer = Consumer(store, announcer)
    consumer.refresh()
    producer.run_cycle(populate(shows(4)))
    store.listings = 0
    assert consumer.refresh().version == announcer.latest()
    assert store.listings == 0 and consumer.metrics.deltas_applied == 1
    # without the hint (or when no such blob exists) the store lists and picks the best candidate
    v = announcer.latest()
    assert store.retrieve_delta(v - 1, toward=v + 5) == store.retrieve_delta(v - 1)


def test_a_superseded_version_is_freed_once_nobody_holds_it(world: Any) -> None:
    """Views, indexes and references of a version point back at it (cycles); the C accelerator's
    objects take part in garbage collection, so a version that was read is freed all the same."""
    store, announcer, producer = world
    producer.run_cycle(populate(shows(50)))
    consumer = Consumer(store, announcer)
    old = consumer.refresh()
    assert old["Show"].get(3).name == "Show 3" and old["Show"].get_many([1, 2]).tolist() == [1, 2]
    old["Show"].find("seasons", 3)
    gone = weakref.ref(old)
    del old
    producer.run_incremental(lambda inc: inc.add_or_modify(Show(3, "Three", 1)))
    assert consumer.refresh()["Show"].get(3).name == "Three"
    gc.collect()
    assert gone() is None


def release_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "marrow-release"]


def test_releases_run_on_one_thread_that_a_started_consumer_starts_before_any_switch(world: Any) -> None:
    """A thread started at a switch holds up that switch's readers; one thread serves every consumer."""
    store, announcer, producer = world
    producer.run_cycle(populate(shows(20)))
    consumers = [Consumer(store, announcer, release_delay=0.0, keep_superseded=0) for _ in range(3)]
    with consumers[0]:
        consumers[0].start()
        assert len(release_threads()) == 1
        consumers[0].wait_for(announcer.latest())
        olds = [weakref.ref(c.refresh()) for c in consumers[1:]]
        for i in range(3):
            producer.run_incremental(lambda inc, i=i: inc.add_or_modify(Show(1, f"One {i}", 1)))
            for c in consumers[1:]:
                c.refresh()
            consumers[0].wait_for(announcer.latest())
        assert len(release_threads()) == 1
    # freed by the releases: with keep_superseded=0, each runs a full collection
    wait_until(lambda: all(o() is None for o in olds), "superseded versions freed by the releases")


def test_a_consumer_dropped_while_its_release_is_pending_is_freed_and_the_release_skipped(world: Any) -> None:
    store, announcer, producer = world
    producer.run_cycle(populate(shows(20)))
    consumer = Consumer(store, announcer, release_delay=0.3)
    consumer.refresh()
    producer.run_incremental(lambda inc: inc.add_or_modify(Show(1, "One", 1)))
    consumer.refresh()  # a release is now due in 0.3 s
    gone = weakref.ref(consumer)
    del consumer
    gc.collect()
    assert gone() is None  # the release thread holds it weakly
    time.sleep(0.4)
    assert release_threads() and release_threads()[0].is_alive()  # and went on without it


# --- a producer killed mid-publish -------------------------------------------------------------------


class Stalling:
    """A publisher that publishes the snapshot of version ``at``, then says so and hangs (to be killed)."""

    def __init__(self, inner: Any, at: int, marker: str) -> None:
        self.inner, self.at, self.marker = inner, at, marker

    def publish(self, ref: BlobRef, data: Buffer) -> None:
        self.inner.publish(ref, data)
        if ref.version == self.at and ref.kind == "snapshot":
            Path(self.marker).write_text("published the snapshot")
            time.sleep(600)

    def __getattr__(self, name: str) -> Any:  # refs and remove, for cleanup
        return getattr(self.inner, name)


def produce_then_hang(directory: str, marker: str) -> None:
    """In a child process: version 1, then a second cycle that hangs between its blobs."""
    blobs = FilesystemBlobStore(directory)
    producer = Producer(SCHEMA, Stalling(blobs, 2, marker), FilesystemAnnouncer(directory))
    producer.run_cycle(populate(shows(10)))
    producer.run_cycle(populate(shows(11)))


def test_a_producer_killed_mid_publish_leaves_consumers_serving_and_a_restart_continues(
    tmp_path: Path,
) -> None:
    directory, marker = str(tmp_path / "store"), str(tmp_path / "marker")
    child = multiprocessing.get_context("spawn").Process(target=produce_then_hang, args=(directory, marker))
    child.start()
    deadline = time.monotonic() + 60
    while not Path(marker).exists():
        assert time.monotonic() < deadline and child.is_alive(), "the producer did not reach its second cycle"
        time.sleep(0.01)
    blobs, watcher = (
        FilesystemBlobStore(directory),
        FilesystemAnnouncementWatcher(directory, poll_interval=0.01),
    )
    with Consumer(blobs, watcher, min_backoff=0.01) as consumer:
        consumer.start()
        assert len(consumer.wait_for(1)["Show"]) == 10
        os.kill(child.pid, signal.SIGKILL)  # between the new snapshot and its delta: nothing announced
        child.join(10)
        assert watcher.latest() == 1 and BlobRef("snapshot", 2) in blobs.refs()
        assert len(consumer.state["Show"]) == 10  # still serving version 1

        restarted = Producer(SCHEMA, blobs, FilesystemAnnouncer(directory))
        restarted.restore(blobs, watcher.latest())
        report = restarted.run_cycle(populate(shows(12)))
        assert report is not None and report.version == 3  # above the dead producer's orphan version 2
        assert BlobRef("delta", 3, 1) in report.published  # a delta from the announced version
        assert len(consumer.wait_for(3)["Show"]) == 12
        assert consumer.metrics.deltas_applied == 1 and consumer.metrics.snapshots_loaded == 1
    watcher.close()


def test_a_rollback_announcement_moves_background_consumers_back(world: Any) -> None:
    """Announcing an older version is a rollback: consumers that follow announcements go there over
    reverse deltas, as a consumer started afresh would load it, so that all end on the same version."""
    store, announcer, producer = world
    versions = [producer.run_cycle(populate(shows(3 + i, f"/{i}"))).version for i in range(3)]
    with Consumer(store, announcer) as consumer:
        consumer.start()
        consumer.wait_for(versions[-1])
        announcer.announce(versions[0])  # the operator rolls back
        deadline = time.monotonic() + 10
        while consumer.version != versions[0]:
            assert time.monotonic() < deadline, f"still on {consumer.version}"
            time.sleep(0.005)
        assert names(consumer)[0] == "Show 0/0" and consumer.metrics.snapshots_loaded == 1
        fresh = Consumer(store, announcer)
        assert fresh.refresh().checksum() == consumer.state.checksum()
        later = producer.run_cycle(populate(shows(9)))
        assert len(consumer.wait_for(later.version)["Show"]) == 9  # forward again from there
