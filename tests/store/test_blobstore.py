"""Blob stores and announcements keep the promises of ``marrow.store.blobstore``.

:class:`BlobStoreContract` and :class:`AnnouncementContract` hold the checks; each implementation
supplies itself through a fixture — here the in-memory and filesystem ones (the filesystem watcher
both by inotify and by polling); ``test_s3.py`` runs the same classes against moto's S3 server.
"""

from __future__ import annotations

import array
import contextlib
import logging
import mmap
import multiprocessing
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from marrow.errors import BlobError
from marrow.store.blobstore import (
    AnnouncementWatcher,
    Announcer,
    BlobRef,
    BlobStore,
    Buffer,
)
from marrow.store.filesystem import (
    ANNOUNCEMENT,
    FilesystemAnnouncementWatcher,
    FilesystemAnnouncer,
    FilesystemBlobStore,
)
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore

WAIT = 5.0  # seconds to wait for what should take milliseconds

S = BlobRef("snapshot", 1)

#: Announcement files that must not yield a version: empty, half-written, wrongly typed, not JSON.
GARBAGE = [b"", b'{"version": 7', b'{"version": "7"}', b'{"version": true}', b"[7]", b"7", b"\xff\xfe"]
GARBAGE += [b'{"version": 7.5}', b'{"version": 7, "announced_at": 3}', b'{"announced_at": "now"}']


def content(ref: BlobRef, size: int = 1000) -> bytes:
    """Bytes that say which blob they belong to, all the way through."""
    stamp = f"<{ref.name}>".encode()
    return (stamp * (size // len(stamp) + 1))[:size]


def found(result: tuple[BlobRef, Buffer] | None) -> tuple[BlobRef, bytes] | None:
    return None if result is None else (result[0], bytes(result[1]))


class BlobStoreContract:
    """What every :class:`BlobStore` does. Subclasses provide the ``store`` fixture."""

    large = 4 << 20  # bytes per blob in the atomicity test
    count = 6  # blobs in the atomicity test

    @pytest.fixture
    def store(self) -> BlobStore:
        raise NotImplementedError

    def test_each_kind_round_trips(self, store: BlobStore) -> None:
        snapshot, delta, reverse = BlobRef("snapshot", 7), BlobRef("delta", 7, 6), BlobRef("reverse", 6, 7)
        for ref in (snapshot, delta, reverse):
            store.publish(ref, content(ref))
        assert found(store.retrieve_snapshot(7)) == (snapshot, content(snapshot))
        assert found(store.retrieve_delta(6)) == (delta, content(delta))
        assert found(store.retrieve_reverse_delta(7)) == (reverse, content(reverse))

    def test_snapshot_is_the_newest_at_or_before_the_version(self, store: BlobStore) -> None:
        for version in (5, 2, 9):
            store.publish(BlobRef("snapshot", version), content(BlobRef("snapshot", version)))
        assert store.retrieve_snapshot(1) is None
        for asked, expected in [(2, 2), (4, 2), (5, 5), (8, 5), (9, 9), (10**12, 9)]:
            result = found(store.retrieve_snapshot(asked))
            assert result == (BlobRef("snapshot", expected), content(BlobRef("snapshot", expected)))

    def test_missing_blobs_are_none(self, store: BlobStore) -> None:
        assert store.retrieve_snapshot(10) is None
        assert store.retrieve_delta(3) is None
        assert store.retrieve_reverse_delta(4) is None
        store.publish(BlobRef("delta", 4, 3), b"d")
        store.publish(BlobRef("reverse", 3, 4), b"r")
        assert store.retrieve_delta(4) is None  # a delta is found by where it starts
        assert store.retrieve_reverse_delta(3) is None
        assert store.retrieve_snapshot(10) is None  # deltas are not snapshots

    def test_of_several_deltas_from_one_origin_the_furthest_wins(self, store: BlobStore) -> None:
        store.publish(BlobRef("delta", 6, 5), b"to 6, rolled back")
        store.publish(BlobRef("delta", 7, 5), b"to 7")
        assert found(store.retrieve_delta(5)) == (BlobRef("delta", 7, 5), b"to 7")

    def test_refs_are_every_blob_sorted(self, store: BlobStore) -> None:
        refs = [BlobRef("snapshot", 10), BlobRef("delta", 10, 9), BlobRef("reverse", 9, 10)]
        refs += [BlobRef("snapshot", 9), BlobRef("snapshot", 100), BlobRef("delta", 11, 10)]
        assert store.refs() == []
        for ref in refs:
            store.publish(ref, content(ref))
        assert store.refs() == sorted(refs)
        assert [r.name for r in store.refs()][:3] == ["delta-9-10", "delta-10-11", "reverse-10-9"]

    def test_remove_deletes_one_blob_and_tolerates_a_missing_one(self, store: BlobStore) -> None:
        a, b = BlobRef("snapshot", 1), BlobRef("snapshot", 2)
        store.publish(a, b"a")
        store.publish(b, b"b")
        store.remove(b)
        store.remove(b)
        store.remove(BlobRef("delta", 9, 8))
        assert store.refs() == [a]
        assert found(store.retrieve_snapshot(2)) == (a, b"a")
        store.publish(b, b"other bytes")  # a removed ref is free again
        assert found(store.retrieve_snapshot(2)) == (b, b"other bytes")

    def test_republishing_the_same_bytes_is_a_no_op(self, store: BlobStore) -> None:
        data = content(S, 100_000)
        store.publish(S, data)
        store.publish(S, bytearray(data))
        store.publish(S, memoryview(data))
        assert store.refs() == [S]
        assert found(store.retrieve_snapshot(1)) == (S, data)

    def test_republishing_other_bytes_is_an_error(self, store: BlobStore) -> None:
        store.publish(S, b"first")
        for other in (b"other", b"first and more", b"firs", b""):
            with pytest.raises(BlobError, match="already published"):
                store.publish(S, other)
        assert found(store.retrieve_snapshot(1)) == (S, b"first")

    def test_any_buffer_is_published_as_its_bytes(self, store: BlobStore) -> None:
        words = array.array("I", range(1000))
        store.publish(S, memoryview(words))
        store.publish(BlobRef("snapshot", 2), b"")
        assert found(store.retrieve_snapshot(1)) == (S, words.tobytes())
        assert found(store.retrieve_snapshot(2)) == (BlobRef("snapshot", 2), b"")

    def test_a_concurrent_reader_never_sees_a_partial_blob(self, store: BlobStore) -> None:
        refs = [BlobRef("snapshot", v) for v in range(1, self.count + 1)]
        expected = {ref: content(ref, self.large) for ref in refs}
        done = threading.Event()
        errors: list[BaseException] = []

        def publish() -> None:
            try:
                for ref in refs:
                    store.publish(ref, expected[ref])
            except BaseException as error:  # reported by the main thread
                errors.append(error)
            finally:
                done.set()

        writer = threading.Thread(target=publish)
        writer.start()
        seen: list[int] = []
        while True:
            finished = done.is_set()  # read before retrieving, so the last round sees every blob
            result = store.retrieve_snapshot(self.count)
            if result is not None:
                ref, data = result
                assert len(data) == self.large, f"{ref.name} read with {len(data)} bytes"
                assert bytes(data) == expected[ref]
                seen.append(ref.version)
            if finished:
                break
            time.sleep(0.001)  # let the writer have the GIL: a reader that hogs it starves the test
        writer.join()
        assert not errors
        assert len(seen) > 1 and seen[-1] == self.count

    def test_racing_publishers_of_one_ref_leave_one_winner(self, store: BlobStore) -> None:
        for version in range(1, 11):
            ref = BlobRef("snapshot", version)
            barrier = threading.Barrier(2)
            outcome: dict[bytes, str] = {}

            def publish(
                data: bytes,
                ref: BlobRef = ref,
                barrier: threading.Barrier = barrier,
                outcome: dict[bytes, str] = outcome,
            ) -> None:
                barrier.wait()
                try:
                    store.publish(ref, data)
                    outcome[data] = "published"
                except BlobError:
                    outcome[data] = "refused"

            threads = [threading.Thread(target=publish, args=(bytes([n]) * 5000,)) for n in (1, 2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(outcome.values()) == ["published", "refused"]
            winner = next(data for data, result in outcome.items() if result == "published")
            assert found(store.retrieve_snapshot(version)) == (ref, winner)


class Recorder:
    """A subscriber that remembers what it was given, and on which thread."""

    def __init__(self) -> None:
        self.versions: list[int] = []
        self.threads: set[int] = set()
        self._changed = threading.Condition()

    def __call__(self, version: int) -> None:
        with self._changed:
            self.versions.append(version)
            self.threads.add(threading.get_ident())
            self._changed.notify_all()

    def wait_for(self, version: int) -> list[int]:
        with self._changed:
            assert self._changed.wait_for(lambda: version in self.versions, WAIT), (
                f"version {version} not delivered within {WAIT} s; got {self.versions}"
            )
            return list(self.versions)


Announcement = tuple[Announcer, AnnouncementWatcher]


class AnnouncementContract:
    """What every announcer and watcher do together. Subclasses provide ``announcement``."""

    @pytest.fixture
    def announcement(self) -> Announcement:
        raise NotImplementedError

    def test_latest_is_none_then_the_last_announced_version(self, announcement: Announcement) -> None:
        announcer, watcher = announcement
        assert watcher.latest() is None
        for version in (3, 4, 10, 2):  # announcing an older version is a rollback, and allowed
            announcer.announce(version)
            assert watcher.latest() == version

    def test_subscribers_get_each_version_once_in_order(self, announcement: Announcement) -> None:
        announcer, watcher = announcement
        first, second = Recorder(), Recorder()
        watcher.subscribe(first)
        watcher.subscribe(second)
        for version in range(1, 6):
            announcer.announce(version)
            second.wait_for(version)
        announcer.announce(5)  # again: not news
        announcer.announce(6)
        assert first.wait_for(6) == second.wait_for(6) == [1, 2, 3, 4, 5, 6]

    def test_a_burst_arrives_in_order_without_repeats(self, announcement: Announcement) -> None:
        announcer, watcher = announcement
        recorder = Recorder()
        watcher.subscribe(recorder)
        for version in range(1, 31):
            announcer.announce(version)
        versions = recorder.wait_for(30)
        assert versions == sorted(set(versions))  # a polling watcher may skip some, never reorder

    def test_a_rollback_is_delivered_in_order(self, announcement: Announcement) -> None:
        """An older version announced is how a rollback reaches consumers (blobstore's docstring)."""
        announcer, watcher = announcement
        recorder = Recorder()
        watcher.subscribe(recorder)
        announcer.announce(5)
        recorder.wait_for(5)
        announcer.announce(3)
        recorder.wait_for(3)  # each seen before the next, so that a polling watcher sees it too
        announcer.announce(3)  # no change: not news
        announcer.announce(7)
        assert recorder.wait_for(7) == [5, 3, 7]

    def test_close_stops_delivery_for_good(self, announcement: Announcement) -> None:
        announcer, watcher = announcement
        recorder = Recorder()
        watcher.subscribe(recorder)
        announcer.announce(1)
        recorder.wait_for(1)
        watcher.close()
        watcher.close()  # idempotent
        with pytest.raises(RuntimeError, match="closed"):
            watcher.subscribe(Recorder())
        with contextlib.suppress(BlobError):  # a NATS announcer shares nothing with the closed watcher
            announcer.announce(2)
        time.sleep(0.1)  # what a delivery would take
        assert recorder.versions == [1]

    def test_a_subscriber_hears_only_of_later_announcements(self, announcement: Announcement) -> None:
        announcer, watcher = announcement
        announcer.announce(3)
        recorder = Recorder()
        watcher.subscribe(recorder)
        announcer.announce(4)
        assert recorder.wait_for(4) == [4]

    def test_unsubscribe_stops_delivery(self, announcement: Announcement) -> None:
        announcer, watcher = announcement
        leaving, staying = Recorder(), Recorder()
        unsubscribe = watcher.subscribe(leaving)  # subscribed first, so told first
        watcher.subscribe(staying)
        announcer.announce(1)
        leaving.wait_for(1)
        unsubscribe()
        unsubscribe()  # twice is harmless
        announcer.announce(2)
        staying.wait_for(2)  # a delivery to ``leaving`` would have come before this one
        assert leaving.versions == [1]

    def test_a_failing_subscriber_does_not_stop_the_others(
        self, announcement: Announcement, caplog: pytest.LogCaptureFixture
    ) -> None:
        announcer, watcher = announcement

        def fail(version: int) -> None:
            raise RuntimeError(f"subscriber bug at {version}")

        recorder = Recorder()
        watcher.subscribe(fail)
        watcher.subscribe(recorder)
        announcer.announce(1)
        recorder.wait_for(1)
        announcer.announce(2)
        assert recorder.wait_for(2) == [1, 2]
        assert "subscriber bug at 1" in caplog.text


class TestInMemoryBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self) -> BlobStore:
        return InMemoryBlobStore()


class TestFilesystemBlobStore(BlobStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        return FilesystemBlobStore(tmp_path / "blobs")  # created on the first publish

    def test_blobs_are_read_only_maps_that_outlive_their_file(self, tmp_path: Path) -> None:
        store = FilesystemBlobStore(tmp_path)
        store.publish(S, b"mapped")
        result = store.retrieve_snapshot(1)
        assert result is not None and isinstance(result[1], mmap.mmap)
        data = result[1]
        store.remove(S)
        assert not (tmp_path / S.name).exists()
        assert data[:] == b"mapped"
        with pytest.raises(TypeError):
            data[0] = 0
        data.close()

    def test_a_snapshot_of_the_very_version_is_opened_by_name(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A shared consumer's every switch: no listing of the directory (the others still list)."""
        store = FilesystemBlobStore(tmp_path)
        for version in (3, 5):
            store.publish(BlobRef("snapshot", version), content(BlobRef("snapshot", version)))
        listings = []
        listing = store.refs
        monkeypatch.setattr(store, "refs", lambda: listings.append(1) or listing())
        assert found(store.retrieve_snapshot(5)) == (BlobRef("snapshot", 5), content(BlobRef("snapshot", 5)))
        assert listings == []
        assert found(store.retrieve_snapshot(4)) == (BlobRef("snapshot", 3), content(BlobRef("snapshot", 3)))
        assert listings == [1]

    def test_temp_files_and_strangers_are_not_blobs(self, tmp_path: Path) -> None:
        store = FilesystemBlobStore(tmp_path)
        store.publish(S, b"real")
        for name in (".snapshot-2.5f3a.tmp", "snapshot-x", "notes.txt", ANNOUNCEMENT, "delta-1"):
            (tmp_path / name).write_bytes(b"not a blob")
        assert store.refs() == [S]
        assert found(store.retrieve_snapshot(2)) == (S, b"real")
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == [
            ".snapshot-2.5f3a.tmp"
        ]

    def test_an_unusable_directory_is_a_blob_error(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_bytes(b"")
        store = FilesystemBlobStore(tmp_path / "file" / "blobs")
        with pytest.raises(BlobError, match="cannot publish snapshot-1"):
            store.publish(S, b"x")
        with pytest.raises(BlobError, match="cannot list"):
            store.refs()
        with pytest.raises(BlobError, match="cannot announce version 1"):
            FilesystemAnnouncer(tmp_path / "file").announce(1)


class TestInMemoryAnnouncer(AnnouncementContract):
    @pytest.fixture
    def announcement(self) -> Announcement:
        announcer = InMemoryAnnouncer()
        return announcer, announcer

    def test_subscribers_are_called_before_announce_returns_on_its_thread(self) -> None:
        announcer, recorder = InMemoryAnnouncer(), Recorder()
        announcer.subscribe(recorder)
        announcer.announce(1)
        assert recorder.versions == [1]
        assert recorder.threads == {threading.get_ident()}

    def test_a_subscriber_may_announce(self) -> None:
        announcer, after = InMemoryAnnouncer(), Recorder()
        announcer.subscribe(lambda version: announcer.announce(version + 1) if version < 3 else None)
        announcer.subscribe(after)
        announcer.announce(1)
        assert after.versions == [3]  # 1 and 2 were overtaken by the nested announcements
        assert announcer.latest() == 3


@pytest.fixture
def watchers() -> Iterator[list[FilesystemAnnouncementWatcher]]:
    """Watchers to close after the test, so that no thread outlives it."""
    made: list[FilesystemAnnouncementWatcher] = []
    yield made
    for watcher in made:
        watcher.close()


class TestFilesystemAnnouncements(AnnouncementContract):
    @pytest.fixture(params=[True, False], ids=["inotify", "polling"])
    def inotify(self, request: pytest.FixtureRequest) -> bool:
        if request.param and not sys.platform.startswith("linux"):
            pytest.skip("inotify is Linux only")
        return bool(request.param)

    @pytest.fixture
    def announcement(
        self, tmp_path: Path, inotify: bool, watchers: list[FilesystemAnnouncementWatcher]
    ) -> Announcement:
        watchers.append(FilesystemAnnouncementWatcher(tmp_path, poll_interval=0.01, inotify=inotify))
        return FilesystemAnnouncer(tmp_path), watchers[-1]

    def test_the_watcher_says_how_it_watches(self, announcement: Announcement, inotify: bool) -> None:
        watcher = announcement[1]
        assert isinstance(watcher, FilesystemAnnouncementWatcher)
        assert watcher.watching_by is None
        watcher.subscribe(Recorder())
        assert watcher.watching_by == ("inotify" if inotify else "polling")

    def test_inotify_wakes_the_watcher_without_polling(
        self, tmp_path: Path, watchers: list[FilesystemAnnouncementWatcher]
    ) -> None:
        if not sys.platform.startswith("linux"):
            pytest.skip("inotify is Linux only")
        watcher = FilesystemAnnouncementWatcher(tmp_path, poll_interval=60, inotify=True)
        watcher.recheck_interval = 60  # so that only an inotify event can deliver in time
        watchers.append(watcher)
        recorder = Recorder()
        watcher.subscribe(recorder)
        assert watcher.watching_by == "inotify"
        blobs, announcer = FilesystemBlobStore(tmp_path), FilesystemAnnouncer(tmp_path)
        for version in (1, 2, 3):
            blobs.publish(BlobRef("snapshot", version), b"other files change too")
            announcer.announce(version)
            recorder.wait_for(version)
        assert recorder.versions == [1, 2, 3]

    def test_the_announcement_is_small_json(self, tmp_path: Path) -> None:
        FilesystemAnnouncer(tmp_path).announce(42)
        text = (tmp_path / ANNOUNCEMENT).read_text()
        assert text.startswith('{"version": 42, "announced_at": "') and text.endswith('+00:00"}')
        assert [p.name for p in tmp_path.iterdir()] == [ANNOUNCEMENT]  # no temp file left

    def test_a_corrupt_announcement_is_ignored(
        self, announcement: Announcement, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        announcer, watcher = announcement
        recorder = Recorder()
        watcher.subscribe(recorder)
        announcer.announce(4)
        recorder.wait_for(4)
        for garbage in GARBAGE:
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                (tmp_path / ANNOUNCEMENT).write_bytes(garbage)  # in place, as a careless tool would
                assert watcher.latest() == 4, garbage  # the last valid version, never a made-up one
                time.sleep(0.03)  # for the watcher's thread to read it too
            assert "ignoring the announcement" in caplog.text, garbage
        announcer.announce(8)
        assert recorder.wait_for(8) == [4, 8]

    def test_a_missing_directory_is_polled_until_it_appears(
        self, tmp_path: Path, inotify: bool, watchers: list[FilesystemAnnouncementWatcher]
    ) -> None:
        directory = tmp_path / "later"
        watchers.append(FilesystemAnnouncementWatcher(directory, poll_interval=0.01, inotify=inotify))
        recorder = Recorder()
        watchers[-1].subscribe(recorder)
        assert watchers[-1].watching_by == "polling"
        FilesystemAnnouncer(directory).announce(1)
        assert recorder.wait_for(1) == [1]

    def test_a_removed_directory_is_polled_once_inotify_loses_it(
        self, tmp_path: Path, watchers: list[FilesystemAnnouncementWatcher]
    ) -> None:
        if not sys.platform.startswith("linux"):
            pytest.skip("inotify is Linux only")
        directory = tmp_path / "announcements"
        FilesystemAnnouncer(directory).announce(1)
        watchers.append(FilesystemAnnouncementWatcher(directory, poll_interval=0.01))
        recorder = Recorder()
        watchers[-1].subscribe(recorder)
        assert watchers[-1].watching_by == "inotify"
        shutil.rmtree(directory)
        deadline = time.monotonic() + WAIT
        while watchers[-1].watching_by != "polling" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watchers[-1].watching_by == "polling"
        FilesystemAnnouncer(directory).announce(2)
        assert recorder.wait_for(2) == [2]

    def test_close_stops_the_thread_for_good(self, announcement: Announcement) -> None:
        watcher = announcement[1]
        assert isinstance(watcher, FilesystemAnnouncementWatcher)
        before = set(threading.enumerate())
        watcher.subscribe(Recorder())
        (thread,) = set(threading.enumerate()) - before
        watcher.close()
        watcher.close()
        assert not thread.is_alive()
        with pytest.raises(RuntimeError, match="closed"):
            watcher.subscribe(Recorder())

    def test_a_watcher_in_another_process_sees_an_announcement(self, tmp_path: Path, inotify: bool) -> None:
        spawn = multiprocessing.get_context("spawn")
        ready, done = spawn.Event(), spawn.Event()
        heard: multiprocessing.Queue[tuple[int, float]] = spawn.Queue()
        child = spawn.Process(target=watch_in_child, args=(str(tmp_path), inotify, ready, done, heard))
        child.start()
        try:
            assert ready.wait(30), "the child process did not start watching"
            announcer = FilesystemAnnouncer(tmp_path)
            for version in (1, 2):
                announced_at = time.monotonic()  # CLOCK_MONOTONIC is one clock for all processes
                announcer.announce(version)
                got, heard_at = heard.get(timeout=WAIT)
                assert got == version
                assert heard_at - announced_at < 1.0  # milliseconds, in fact; bounded generously
        finally:
            done.set()
            child.join(WAIT)
            if child.is_alive():
                child.kill()
            heard.close()
            heard.join_thread()
        assert child.exitcode == 0


def watch_in_child(directory: str, inotify: bool, ready: Event, done: Event, heard: Any) -> None:
    """Run in a spawned process: report each version heard, with the time it was heard."""
    watcher = FilesystemAnnouncementWatcher(directory, poll_interval=0.02, inotify=inotify)
    watcher.subscribe(lambda version: heard.put((version, time.monotonic())))
    ready.set()
    done.wait(60)
    watcher.close()


def test_a_watcher_thread_survives_an_unreadable_announcement(
    tmp_path: Path, watchers: list[FilesystemAnnouncementWatcher], caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ANNOUNCEMENT).mkdir()  # reading it fails (IsADirectoryError) on every poll
    watchers.append(FilesystemAnnouncementWatcher(tmp_path, poll_interval=0.01, inotify=False))
    with pytest.raises(BlobError, match="cannot read the announcement"):
        watchers[-1].latest()
    recorder = Recorder()
    watchers[-1].subscribe(recorder)  # not an error: the thread retries
    deadline = time.monotonic() + 10  # a loaded machine may delay the thread's first poll
    while "will retry" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # several more polls at 0.01 s
    assert caplog.text.count("will retry") == 1  # logged once per outage, not once per poll
    (tmp_path / ANNOUNCEMENT).rmdir()
    FilesystemAnnouncer(tmp_path).announce(1)
    assert recorder.wait_for(1) == [1]
