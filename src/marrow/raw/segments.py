"""Segment files: the write log's format on disk, and reading whole entries from it.

A log directory holds **segment files** named by the offset of their first entry
(``00000000000000000001.log``), each a sequence of framed entries::

    u32 payload length | u32 crc32 of (offset, epoch, payload) | u64 offset | u64 epoch | payload

Invariants of reading: only whole frames whose checksum holds are returned, in offset order, each
following the one before by one; a frame that is short (still being written) or fails its checksum
(a torn tail the appender will cut) ends a read without error. A reader with a deleted segment open
finishes it, then moves to the next; if the next was deleted too (truncated while the reader was
behind), it says so with :class:`~marrow.errors.LogTruncatedError`. The appender and its recovery
are in :mod:`marrow.raw.filelog`.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from marrow.errors import LogError, LogTruncatedError
from marrow.raw.log import Entry

__all__ = ["Cursor", "Segments", "frame", "parse", "segment_name"]

_HEADER = struct.Struct("<IIQQ")
_IDENTITY = struct.Struct("<QQ")
_SUFFIX = ".log"
_CHUNK = 1 << 20


def frame(offset: int, epoch: int, payload: bytes) -> bytes:
    """One entry as it is stored: header, then payload."""
    crc = zlib.crc32(payload, zlib.crc32(_IDENTITY.pack(offset, epoch)))
    return _HEADER.pack(len(payload), crc, offset, epoch) + payload


def parse(buffer: bytes, expect: int | None) -> tuple[list[Entry], int, bool]:
    """Whole, valid frames at the start of ``buffer``: (entries, bytes they take, whether parsing
    stopped at a bad frame rather than at the end of the data). ``expect`` is the offset the first
    frame must have (None: any); each next frame must follow it by one."""
    entries: list[Entry] = []
    pos, end = 0, len(buffer)
    view = memoryview(buffer)
    while pos + _HEADER.size <= end:
        length, crc, offset, epoch = _HEADER.unpack_from(buffer, pos)
        stop = pos + _HEADER.size + length
        if stop > end:
            return entries, pos, False  # incomplete: more bytes may come
        payload = bytes(view[pos + _HEADER.size : stop])
        if zlib.crc32(payload, zlib.crc32(_IDENTITY.pack(offset, epoch))) != crc or (
            expect is not None and offset != expect
        ):
            return entries, pos, True
        entries.append(Entry(offset, epoch, payload))
        expect = offset + 1
        pos = stop
    return entries, pos, False


def segment_name(first: int) -> str:
    """The file name of the segment whose first entry has offset ``first``."""
    return f"{first:020d}{_SUFFIX}"


@dataclass
class Cursor:
    """A reader's position: in the segment starting at ``first``, byte ``pos``, after ``offset``."""

    first: int
    fd: int
    pos: int
    offset: int

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Segments:
    """The segment files in ``directory``: listing them and reading entries through a :class:`Cursor`.
    Not thread-safe: its user serialises reads (a cursor is one reader's position)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def firsts(self) -> list[int]:
        """The segments, by the offset of their first entry, in order."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise LogError(f"cannot list the write log in {self.directory}: {e}") from e
        found = []
        for name in names:
            if name.endswith(_SUFFIX) and name[: -len(_SUFFIX)].isdigit():
                found.append(int(name[: -len(_SUFFIX)]))
        return sorted(found)

    def open(self, first: int) -> int | None:
        """A read-only descriptor of the segment starting at ``first`` (None: it is gone)."""
        try:
            return os.open(self.directory / segment_name(first), os.O_RDONLY)
        except FileNotFoundError:
            return None

    def seek(self, after: int) -> Cursor | None:
        """A cursor just after offset ``after`` (None for an empty log)."""
        while True:
            segments = self.firsts()
            if not segments:
                return None
            if after + 1 < segments[0]:
                raise LogTruncatedError(
                    f"entries after offset {after} were truncated from {self.directory} (it starts at "
                    f"{segments[0]}); load the latest version and read from its folded offset",
                    segments[0],
                )
            first = max(s for s in segments if s <= after + 1)
            fd = self.open(first)
            if fd is None:
                continue  # truncated meanwhile: list again
            cursor = Cursor(first, fd, 0, first - 1)
            while cursor.offset < after:
                if not self.advance(cursor, after - cursor.offset, keep=False):
                    break
            return cursor

    def advance(self, cursor: Cursor, limit: int, keep: bool = True) -> list[Entry] | bool:
        """Read up to ``limit`` whole entries at the cursor, within its segment; moves it past them.
        Returns the entries (or, with ``keep=False``, whether any were read)."""
        out: list[Entry] = []
        while len(out) < limit:
            chunk = os.pread(cursor.fd, _CHUNK, cursor.pos)
            if len(chunk) >= _HEADER.size:
                need = _HEADER.size + _HEADER.unpack_from(chunk)[0]
                if need > len(chunk):  # one entry larger than a chunk
                    chunk = os.pread(cursor.fd, need, cursor.pos)
            entries, used, _bad = parse(chunk, cursor.offset + 1)
            if not entries:
                break  # the end (or a frame still being written, or a tail the writer will cut)
            entries = entries[: limit - len(out)]
            used = sum(_HEADER.size + len(e.payload) for e in entries)
            cursor.pos += used
            cursor.offset = entries[-1].offset
            out += entries
        return out if keep else bool(out)

    def next(self, cursor: Cursor) -> Cursor | None:
        """The cursor moved to the segment after ``cursor``'s, if that segment exists."""
        if cursor.offset + 1 == cursor.first:
            return None  # nothing read in this segment: the next one cannot start here too
        fd = self.open(cursor.offset + 1)
        if fd is None:
            return None
        cursor.close()
        return Cursor(cursor.offset + 1, fd, 0, cursor.offset)

    def check_not_skipped(self, cursor: Cursor) -> None:
        """At the end of a segment with no successor: fine, unless later segments exist (the next
        one was truncated while this reader was behind)."""
        later = [s for s in self.firsts() if s > cursor.offset + 1]
        if later:
            raise LogTruncatedError(
                f"entries after offset {cursor.offset} were truncated from {self.directory} while this "
                "reader was behind; load the latest version and read from its folded offset",
                later[0],
            )

    def read(self, cursor: Cursor | None, after: int, limit: int) -> tuple[Cursor | None, list[Entry]]:
        """Up to ``limit`` entries after offset ``after``, across segments, continuing from ``cursor``
        when it stands there (a new one otherwise); returns the cursor to continue from next time."""
        if cursor is None or cursor.offset != after:
            if cursor is not None:
                cursor.close()
            cursor = self.seek(after)
            if cursor is None:
                return None, []
        out: list[Entry] = []
        while len(out) < limit:
            entries = self.advance(cursor, limit - len(out))
            assert isinstance(entries, list)
            out += entries
            if len(out) < limit:
                moved = self.next(cursor)
                if moved is None:
                    if not out:
                        self.check_not_skipped(cursor)
                    break
                cursor = moved
        return cursor, out
