"""Damaged and misdirected blobs are refused with the right error, and the state in memory is untouched."""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from catalog import SCHEMA
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow.errors import BlobError, BlobVersionError, CorruptBlobError, MarrowError, StateMismatchError
from marrow.store import ReadState, WriteState, read_blob, read_header
from marrow.store._packed import Packed
from marrow.store.blob import write_blob
from marrow.store.testing import dump

TRAILER = 16  # u32 CRC, u32 reserved, u64 total length
RESERVED = range(-12, -8)  # the reserved u32 of the trailer, as offsets from the end


def titles(n: int, offset: int = 0) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {
            "id": i + offset,
            "title": ["Dark", "The Dark Knight", "Straße"][i % 3],
            "year": 1990 + i,
            "score": i / 3,
            "kids": i % 2 == 0,
            "director": {"id": i % 4, "name": f"person {i % 4}", "photo": bytes([i % 4])},
            "cast": [{"id": j, "name": f"person {j}", "photo": bytes([j])} for j in range(i % 4)],
            "genres": ["drama", "noir"][: i % 3],
            "extra": {"k": i},
            "awards": [{"name": "Oscar", "year": 2000 + i % 2}],
        }


@dataclass
class Blobs:
    snapshot1: bytes
    delta2: bytes
    reverse2: bytes
    snapshot2: bytes
    delta3: bytes


@pytest.fixture(scope="module")
def blobs() -> Blobs:
    ws = WriteState(SCHEMA)
    ws.add_all(titles(6), "Title")
    v1 = ws.commit(version=1)
    ws.add_all(titles(6, offset=2), "Title")
    v2 = ws.commit(version=2)
    ws.add_all(titles(3), "Title")
    v3 = ws.commit(version=3)
    assert v2.delta() is not None and v2.reverse_delta() is not None and v3.delta() is not None
    return Blobs(v1.snapshot(), v2.delta(), v2.reverse_delta(), v2.snapshot(), v3.delta())


class Intact:
    """A loaded state, its indexes in use, and what it held; :meth:`check` says it is unchanged."""

    def __init__(self, state: ReadState):
        self.state = state
        state["Title"].find("genres", "noir")
        state["Title"].complete("title", "da")
        state["Person"].get(1)
        self.checksum = state.checksum()
        self.records = dump(state)
        self.noir = [t.id for t in state["Title"].find("genres", "noir")]

    def check(self) -> None:
        assert self.state.checksum() == self.checksum
        assert dump(self.state) == self.records
        assert [t.id for t in self.state["Title"].find("genres", "noir")] == self.noir
        assert self.state["Title"].get(1).director.name == "person 1"


@pytest.fixture
def v1(blobs: Blobs) -> Intact:
    return Intact(ReadState.from_snapshot(blobs.snapshot1))


def with_crc(blob: bytes | bytearray) -> bytes:
    """``blob`` with its trailer's CRC made right again, so that checks after the CRC's are reached."""
    out = bytearray(blob)
    struct.pack_into("<I", out, len(out) - TRAILER, zlib.crc32(out[: len(out) - TRAILER]))
    return bytes(out)


def flipped(blob: bytes, pos: int, mask: int) -> bytes:
    out = bytearray(blob)
    out[pos] ^= mask
    return bytes(out)


# --- damage ----------------------------------------------------------------------------------------------


def test_every_truncation_is_refused(blobs: Blobs) -> None:
    for blob in (blobs.snapshot1, blobs.delta2, blobs.reverse2):
        for cut in range(len(blob)):
            with pytest.raises(CorruptBlobError, match="truncated"):
                read_blob(blob[:cut])


def test_truncated_blobs_leave_the_state_as_it_was(blobs: Blobs, v1: Intact) -> None:
    def cuts(n: int) -> tuple[int, ...]:
        return 0, 31, 32, n // 2, n - TRAILER, n - 1

    for cut in cuts(len(blobs.delta2)):
        with pytest.raises(CorruptBlobError):
            v1.state.apply_delta(blobs.delta2[:cut])
    for cut in cuts(len(blobs.snapshot2)):
        with pytest.raises(CorruptBlobError):
            ReadState.from_snapshot(blobs.snapshot2[:cut])
    v1.check()
    with pytest.raises(CorruptBlobError, match="padded"):
        v1.state.apply_delta(blobs.delta2 + b"\0")
    v1.check()


def positions(n: int) -> list[int]:
    """Every byte of the prefix and trailer, and a spread through the rest."""
    return sorted({*range(16), *range(n - TRAILER, n), *range(16, n - TRAILER, 7)})


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_a_flipped_byte_is_refused(blobs: Blobs, v1: Intact, mask: int) -> None:
    v2 = ReadState.from_snapshot(blobs.snapshot2)
    loaders = [
        (blobs.delta2, v1.state.apply_delta),
        (blobs.reverse2, v2.apply_delta),
        (blobs.snapshot2, ReadState.from_snapshot),
    ]
    for blob, load in loaders:
        n = len(blob)
        for pos in positions(n):
            bad = flipped(blob, pos, mask)
            if pos - n in RESERVED:  # reserved for later use: readers ignore it (docs/format.md §1)
                assert load(bad).checksum() == load(blob).checksum()
                continue
            with pytest.raises(BlobVersionError if pos in (4, 5) else CorruptBlobError):
                load(bad)
    v1.check()


def test_the_reserved_trailer_word_is_ignored(blobs: Blobs) -> None:
    bad = bytearray(blobs.snapshot2)
    struct.pack_into("<I", bad, len(bad) - 12, 0xDEADBEEF)
    assert (
        ReadState.from_snapshot(bytes(bad)).checksum() == ReadState.from_snapshot(blobs.snapshot2).checksum()
    )


def test_wrong_magic(blobs: Blobs, v1: Intact) -> None:
    bad = with_crc(b"HOLO" + blobs.delta2[4:])
    with pytest.raises(CorruptBlobError, match=r"not a Marrow blob: starts with b'HOLO', expected b'MRRW'"):
        v1.state.apply_delta(bad)
    with pytest.raises(CorruptBlobError, match="not a Marrow blob"):
        read_blob(b"PK\x03\x04" + bytes(100))  # a zip file, say
    v1.check()


@pytest.mark.parametrize("version", [0, 2, 65535])
def test_unknown_format_version(blobs: Blobs, v1: Intact, version: int) -> None:
    for blob in (blobs.delta2, blobs.snapshot2):
        bad = bytearray(blob)
        struct.pack_into("<H", bad, 4, version)
        bad = bytearray(with_crc(bad))  # so that the version check, not the checksum, must fire
        with pytest.raises(BlobVersionError) as info:
            if blob is blobs.delta2:
                v1.state.apply_delta(bytes(bad))
            else:
                ReadState.from_snapshot(bytes(bad))
        message = str(info.value)
        assert f"format version {version}" in message and "reads version 1" in message
        assert "Upgrade Marrow" in message  # what to do about it
    v1.check()


def test_unknown_kind(blobs: Blobs, v1: Intact) -> None:
    bad = bytearray(blobs.delta2)
    struct.pack_into("<H", bad, 6, 9)
    with pytest.raises(CorruptBlobError, match="unknown blob kind 9"):
        v1.state.apply_delta(with_crc(bad))
    v1.check()


def test_a_header_that_is_not_json(blobs: Blobs, v1: Intact) -> None:
    (length,) = struct.unpack_from("<Q", blobs.delta2, 8)
    bad = blobs.delta2[:16] + b"{" + b" " * (length - 1) + blobs.delta2[16 + length :]
    with pytest.raises(CorruptBlobError, match="not valid JSON"):
        v1.state.apply_delta(with_crc(bad))
    v1.check()


@settings(max_examples=150)
@given(data=st.data())
def test_a_damaged_header_with_a_good_checksum_is_refused_or_read(blobs: Blobs, data: st.DataObject) -> None:
    """A header that passes the CRC (damage before it was computed) is checked as it is decoded: it is
    read or refused with CorruptBlobError, never another exception."""
    blob = data.draw(st.sampled_from([blobs.snapshot1, blobs.delta2, blobs.reverse2]))
    (length,) = struct.unpack_from("<Q", blob, 8)
    pos = data.draw(st.integers(16, 16 + length - 1))
    mask = data.draw(st.integers(1, 255))
    bad = with_crc(flipped(blob, pos, mask))
    with contextlib.suppress(CorruptBlobError):
        read_blob(bad)


# --- misdirected blobs -----------------------------------------------------------------------------------


def test_a_delta_for_another_state_is_refused(blobs: Blobs, v1: Intact) -> None:
    v2 = v1.state.apply_delta(blobs.delta2)
    _, delta_header = read_header(blobs.delta2)
    cases = [
        (v2, blobs.delta2),  # applied twice
        (v1.state, blobs.reverse2),  # a reverse delta to the state it leads to
        (v1.state, blobs.delta3),  # a version skipped
    ]
    for state, blob in cases:
        with pytest.raises(StateMismatchError) as info:
            state.apply_delta(blob)
        message = str(info.value)
        assert read_header(blob)[1]["origin"] in message and state.tag in message
        assert "load a snapshot" in message
    assert delta_header["origin"] == v1.state.tag
    v1.check()

    other = WriteState(SCHEMA)  # another producer, the very same records: still another state
    other.add_all(titles(6), "Title")
    other.commit(version=1)
    other.add_all(titles(6, offset=2), "Title")
    with pytest.raises(StateMismatchError):
        v1.state.apply_delta(other.commit(version=2).delta())
    v1.check()


def test_blobs_of_the_wrong_kind(blobs: Blobs, v1: Intact) -> None:
    with pytest.raises(BlobError, match="expected a delta, got a snapshot") as info:
        v1.state.apply_delta(blobs.snapshot2)
    assert "from_snapshot" in str(info.value)
    with pytest.raises(BlobError, match="expected a snapshot, got a delta"):
        ReadState.from_snapshot(blobs.delta2)
    with pytest.raises(BlobError, match="expected a snapshot, got a reverse"):
        ReadState.from_snapshot(blobs.reverse2)
    v1.check()


def test_blob_errors_are_marrow_errors() -> None:
    for cls in (CorruptBlobError, BlobVersionError, StateMismatchError):
        assert issubclass(cls, BlobError) and issubclass(cls, MarrowError)


def test_read_header_and_buffers(blobs: Blobs) -> None:
    kind, header = read_header(blobs.delta2)
    assert kind == "delta" and header["version"] == 2 and header["fingerprint"] == SCHEMA.fingerprint
    assert read_header(blobs.reverse2)[0] == "reverse" and read_header(blobs.reverse2)[1]["version"] == 1
    assert read_header(blobs.snapshot1)[0] == "snapshot" and read_header(blobs.snapshot1)[1]["origin"] is None
    assert len(blobs.snapshot1) % 64 == TRAILER
    expected = ReadState.from_snapshot(blobs.snapshot1).checksum()
    for buffer in (bytearray(blobs.snapshot1), memoryview(blobs.snapshot1)):
        assert ReadState.from_snapshot(buffer).checksum() == expected


# --- primary-key indexes shipped in snapshots ------------------------------------------------------------


def test_a_snapshot_may_ship_its_key_indexes_and_loading_adopts_them(blobs: Blobs) -> None:
    state = ReadState.from_snapshot(blobs.snapshot1)
    shipped = state.snapshot()
    kind, _ = read_header(shipped)
    assert kind == "snapshot" and set(read_blob(shipped).keys) == {"Title", "Person"}  # Award has no key
    assert (
        "primary_key" not in read_header(blobs.snapshot1)[1]["types"]["Title"]
    )  # optional: old blobs lack it
    loaded = ReadState.from_snapshot(shipped)
    assert (
        loaded.tag == state.tag and loaded.version == state.version and loaded.checksum() == state.checksum()
    )
    index = loaded["Title"]._pk
    assert index is not None and index.packed.array.base is not None  # a view into the blob, not a build
    assert [loaded["Title"].get(i).id for i in range(6)] == list(range(6)) and loaded["Title"].get(6) is None
    loaded.apply_delta(blobs.delta2)  # a delta published for the state applies to what the snapshot loads as


def malformed_indexes(blob: Any) -> Iterator[tuple[str, dict[str, tuple[Packed, int]]]]:
    slots, used = blob.keys["Title"]
    count = blob.types["Title"].count
    yield "slot width", {"Title": (Packed(slots.array, slots.bits + 1, slots.n // 2), used)}
    yield "no empty slot", {"Title": (slots, slots.n)}
    yield "fewer used slots than records", {"Title": (slots, count - 1)}
    yield "type without a key", {"Award": (slots, used)}


@pytest.mark.parametrize(
    "case", ["slot width", "no empty slot", "fewer used slots than records", "type without a key"]
)
def test_a_shipped_key_index_that_cannot_be_this_versions_is_refused(blobs: Blobs, case: str) -> None:
    blob = read_blob(ReadState.from_snapshot(blobs.snapshot1).snapshot())
    keys = dict(malformed_indexes(blob))[case]
    bad = write_blob(dataclasses.replace(blob, keys=keys))
    with pytest.raises(CorruptBlobError, match="primary-key index"):
        ReadState.from_snapshot(bad)


def test_a_damaged_key_index_never_hangs_or_reads_outside_the_keys(blobs: Blobs) -> None:
    """Slot contents are trusted like every code of a blob that passes its CRC, but a probe stays bounded:
    slots that all point past the records find nothing, with no empty slot to stop at."""
    blob = read_blob(ReadState.from_snapshot(blobs.snapshot1).snapshot())
    slots, _ = blob.keys["Title"]
    junk = Packed.encode(np.full(slots.n, slots.null - 1, dtype=np.uint64), slots.bits)
    state = ReadState.from_snapshot(
        write_blob(dataclasses.replace(blob, keys={"Title": (junk, slots.n - 1)}))
    )
    assert state["Title"].get(1) is None and state["Title"].get_many([1, 2]).tolist() == [-1, -1]
