"""The write log: one contract for every implementation, then what the segment files add (torn tails,
segments, one appender, tailing across processes)."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow.errors import FencedError, LogError, LogTruncatedError
from marrow.raw.filelog import FileWriteLog, frame, parse
from marrow.raw.log import Entry, InMemoryWriteLog, WriteLog


class WriteLogContract:
    """What every WriteLog promises; subclasses provide the ``log`` fixture."""

    @pytest.fixture
    def log(self) -> Iterator[WriteLog]:
        raise NotImplementedError

    def test_an_empty_log_has_nothing(self, log: WriteLog) -> None:
        assert log.last_offset() == 0
        assert log.read(0) == []

    def test_appends_get_consecutive_offsets_and_read_back_in_order(self, log: WriteLog) -> None:
        assert log.append([b"a", b"b"], epoch=1) == 2
        assert log.append([b"c"], epoch=1) == 3
        assert log.last_offset() == 3
        assert log.read(0) == [Entry(1, 1, b"a"), Entry(2, 1, b"b"), Entry(3, 1, b"c")]
        assert log.read(1, limit=1) == [Entry(2, 1, b"b")]
        assert log.read(3) == []

    def test_an_empty_append_changes_nothing(self, log: WriteLog) -> None:
        log.append([b"a"], epoch=1)
        assert log.append([], epoch=1) == 1
        assert log.read(0) == [Entry(1, 1, b"a")]

    def test_a_lower_epoch_is_fenced_off(self, log: WriteLog) -> None:
        log.append([b"old"], epoch=1)
        log.append([b"new"], epoch=2)
        with pytest.raises(FencedError, match="deposed"):
            log.append([b"late"], epoch=1)
        assert [e.payload for e in log.read(0)] == [b"old", b"new"]

    def test_truncate_keeps_offsets_and_refuses_reads_below(self, log: WriteLog) -> None:
        log.append([b"x"] * 10, epoch=1)
        log.truncate(6)
        entries = log.read(log_start(log) - 1)
        assert entries[-1].offset == 10 and [e.offset for e in entries] == list(range(entries[0].offset, 11))
        assert log.append([b"y"], epoch=1) == 11
        assert log.last_offset() == 11

    def test_watch_is_told_of_appends(self, log: WriteLog) -> None:
        told = threading.Event()
        stop = log.watch(told.set)
        try:
            log.append([b"a"], epoch=1)
            assert told.wait(10)
        finally:
            stop()


def log_start(log: WriteLog) -> int:
    """The first offset the log holds (reading from 0 tells it when entries were truncated)."""
    try:
        log.read(0, limit=1)
        return 1
    except LogTruncatedError as e:
        return e.first


class TestInMemoryWriteLog(WriteLogContract):
    @pytest.fixture
    def log(self) -> Iterator[WriteLog]:
        yield InMemoryWriteLog()

    def test_truncated_reads_say_where_the_log_starts(self) -> None:
        log = InMemoryWriteLog()
        log.append([b"x"] * 5, epoch=1)
        log.truncate(4)
        with pytest.raises(LogTruncatedError, match="starts at 4") as caught:
            log.read(1)
        assert caught.value.first == 4


class TestFileWriteLog(WriteLogContract):
    @pytest.fixture
    def log(self, tmp_path: Path) -> Iterator[WriteLog]:
        with FileWriteLog(tmp_path / "log", writable=True, segment_bytes=64) as log:
            yield log


# --- frames ------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(
    st.lists(st.tuples(st.integers(0, 2**40), st.binary(max_size=300)), max_size=20), st.integers(1, 2**40)
)
def test_frames_round_trip(items: list[tuple[int, bytes]], first: int) -> None:
    entries = [Entry(first + i, epoch, payload) for i, (epoch, payload) in enumerate(items)]
    data = b"".join(frame(e.offset, e.epoch, e.payload) for e in entries)
    assert parse(data, first) == (entries, len(data), False)


def test_a_flipped_bit_stops_parsing_at_that_frame() -> None:
    data = bytearray(frame(1, 1, b"hello") + frame(2, 1, b"world"))
    data[-2] ^= 0x10
    entries, used, bad = parse(bytes(data), 1)
    assert [e.payload for e in entries] == [b"hello"] and bad and used == len(frame(1, 1, b"hello"))


# --- recovery of a torn tail -------------------------------------------------------------------------


def test_a_torn_tail_is_cut_at_every_byte_of_the_last_entry(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with FileWriteLog(directory, writable=True) as log:
        log.append([b"first", b"second"], epoch=3)
        log.append([b"the last entry, torn"], epoch=3)
    (segment,) = directory.glob("*.log")
    whole = segment.read_bytes()
    last = len(frame(3, 3, b"the last entry, torn"))
    for cut in range(len(whole) - last, len(whole)):
        segment.write_bytes(whole[:cut])
        with FileWriteLog(directory) as reader:  # a reader never sees the torn entry
            assert [e.offset for e in reader.read(0)] == [1, 2]
        with FileWriteLog(directory, writable=True) as log:
            assert log.last_offset() == 2
            assert log.append([b"after recovery"], epoch=3) == 3
            assert [e.payload for e in log.read(0)] == [b"first", b"second", b"after recovery"]
        assert segment.stat().st_size == len(whole) - last + len(frame(3, 3, b"after recovery"))
    segment.write_bytes(whole)


def test_garbage_after_the_last_entry_is_cut_off(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with FileWriteLog(directory, writable=True) as log:
        log.append([b"kept"], epoch=1)
    (segment,) = directory.glob("*.log")
    with segment.open("ab") as f:
        f.write(os.urandom(100))
    with FileWriteLog(directory, writable=True) as log:
        assert log.read(0) == [Entry(1, 1, b"kept")]
        assert log.append([b"next"], epoch=1) == 2


def test_the_epoch_survives_reopening(tmp_path: Path) -> None:
    with FileWriteLog(tmp_path, writable=True) as log:
        log.append([b"a"], epoch=5)
    with FileWriteLog(tmp_path, writable=True) as log, pytest.raises(FencedError):
        log.append([b"b"], epoch=4)


# --- segments ----------------------------------------------------------------------------------------


def test_entries_spread_over_segments_read_back_whole(tmp_path: Path) -> None:
    with FileWriteLog(tmp_path, writable=True, segment_bytes=200) as log:
        for i in range(30):
            log.append([f"entry {i}".encode() * 3, b"x"], epoch=1)
        assert len(list(tmp_path.glob("*.log"))) > 3
        with FileWriteLog(tmp_path) as reader:
            entries = reader.read(0, limit=10_000)
            assert [e.offset for e in entries] == list(range(1, 61))
            assert reader.read(37, limit=2) == entries[37:39]
            assert reader.last_offset() == 60


def test_truncate_removes_whole_segments_below_the_offset_only(tmp_path: Path) -> None:
    with FileWriteLog(tmp_path, writable=True, segment_bytes=100) as log:
        for _ in range(20):
            log.append([b"0123456789" * 3], epoch=1)
        with FileWriteLog(tmp_path) as reader:
            reader.read(0, limit=2)  # a reader behind
            log.truncate(15)
            start = log_start(log)
            assert 1 < start <= 15
            assert [e.offset for e in log.read(14)] == list(range(15, 21))
            with pytest.raises(LogTruncatedError):  # it was behind: what it needs next is gone
                reader.read(2, limit=100)


def test_a_second_appender_is_refused(tmp_path: Path) -> None:
    with FileWriteLog(tmp_path, writable=True), pytest.raises(LogError, match="another process"):
        FileWriteLog(tmp_path, writable=True)


def test_a_read_only_log_refuses_appends(tmp_path: Path) -> None:
    with FileWriteLog(tmp_path) as log, pytest.raises(LogError, match="read-only"):
        log.append([b"a"], epoch=1)


def _append_in_child(directory: str, count: int) -> None:
    with FileWriteLog(directory, writable=True) as log:
        for i in range(count):
            log.append([f"from the child {i}".encode()], epoch=1)


def test_another_process_tails_what_one_appends(tmp_path: Path) -> None:
    with FileWriteLog(tmp_path) as reader:
        seen: list[Entry] = []
        done = threading.Event()

        def pull() -> None:
            while entries := reader.read(seen[-1].offset if seen else 0):
                seen.extend(entries)
            if len(seen) == 50:
                done.set()

        stop = reader.watch(pull)
        child = multiprocessing.get_context("spawn").Process(
            target=_append_in_child, args=(str(tmp_path), 50)
        )
        child.start()
        child.join(60)
        assert done.wait(10), f"saw {len(seen)} of 50"
        stop()
        assert [e.payload for e in seen] == [f"from the child {i}".encode() for i in range(50)]
        assert reader.last_offset() == 50
