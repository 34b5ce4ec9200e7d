"""The write log in local files: Marrow's embedded default.

Layout: a directory of **segment files** named by the offset of their first entry, each a sequence
of framed entries (the format, and reading it, are in :mod:`marrow.raw.segments`).

Lifecycle: one process opens the log ``writable=True``; it takes an exclusive lock on the directory
(a second appender is refused), recovers a torn tail (see below), and appends. Any number of
processes open it read-only and tail it: ``read`` follows the segments in order, ``watch`` wakes
them through inotify (IN_MODIFY) as soon as an append lands, or by polling where inotify is missing.
Readers read only up to the offset in ``.durable``, which the appender rewrites after each sync:
an entry is never visible before it is acknowledged.

Invariants:

* ``append`` writes a batch of entries with one ``write`` and one ``fdatasync``, and returns only
  then (group commit: the writer batches concurrent bulk updates into one append). A failed write
  or sync poisons the log object: every later append raises until the log is opened again, since
  the file may hold a partial batch;
* recovery on open: the last segment is read frame by frame; from the first frame that is short or
  fails its checksum, the rest of the file is cut off (those bytes were never acknowledged);
* a reader only ever returns whole frames whose checksum holds, in offset order;
* a new segment starts when the current one passes ``segment_bytes``; ``truncate(below)`` deletes
  whole segments whose entries are all below ``below``, never the last one, so the next offset is
  always known. A reader with a deleted segment open finishes it, then moves to the next.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import struct
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from marrow.errors import FencedError, LogError
from marrow.raw.log import Entry, Watchers
from marrow.raw.segments import Cursor, Segments, frame, parse, segment_name
from marrow.store.filesystem import _fsync_directory, _Inotify

# frame and parse are re-exported: tests and tools import them from here
__all__ = ["FileWriteLog", "frame", "parse"]

log = logging.getLogger(__name__)

_LOCK = ".append.lock"
_DURABLE = ".durable"  # the last durable offset, u64 little-endian, rewritten after every sync
_OFFSET = struct.Struct("<Q")
_IN_MODIFY, _IN_CREATE = 0x2, 0x100  # inotify(7)
SEGMENT_BYTES = 64 << 20  #: a new segment starts once the current one is this large


class FileWriteLog:
    """A :class:`~marrow.raw.log.WriteLog` in segment files in ``directory``; see the module docstring."""

    recheck_interval = 1.0  #: seconds between wake-ups of a watch even without an inotify event

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        writable: bool = False,
        segment_bytes: int = SEGMENT_BYTES,
        poll_interval: float = 0.05,
    ) -> None:
        self.directory = Path(directory)
        self.writable = writable
        self.segment_bytes = segment_bytes
        self.poll_interval = poll_interval
        self._files = Segments(self.directory)
        self._read_lock = threading.Lock()
        self._cursor: Cursor | None = None
        self._append_lock = threading.Lock()
        self._failed: BaseException | None = None
        self._fd = -1
        self._lock_fd = -1
        self._durable_fd = -1
        self._watchers = Watchers()
        self._watch_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        if writable:
            self._open_for_append()

    def __repr__(self) -> str:
        return f"FileWriteLog({str(self.directory)!r}, writable={self.writable})"

    # --- appending -------------------------------------------------------------------------------

    def _open_for_append(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                self._lock_fd = -1
                raise LogError(
                    f"another process is appending to the write log in {self.directory}; "
                    "one writer at a time (it holds the writer lease)"
                ) from None
            segments = self._files.firsts()
            if not segments:
                self._create_segment(1)
                self._last, self._epoch, self._size = 0, 0, 0
            else:
                self._recover(segments)
            self._durable_fd = os.open(self.directory / _DURABLE, os.O_RDWR | os.O_CREAT, 0o666)
            self._publish_durable()
        except OSError as e:
            raise LogError(f"cannot open the write log in {self.directory} for appending: {e}") from e

    def _recover(self, segments: list[int]) -> None:
        """Cut off a torn tail of the last segment; find the last offset and epoch."""
        while True:
            first = segments[-1]
            path = self.directory / segment_name(first)
            data = path.read_bytes()
            entries, good, bad = parse(data, first)
            if good < len(data):
                log.warning(
                    "write log %s: cutting off %d bytes after offset %d (a torn tail%s)",
                    path,
                    len(data) - good,
                    entries[-1].offset if entries else first - 1,
                    ", a frame failed its checksum" if bad else "",
                )
                with path.open("r+b") as file:
                    file.truncate(good)
                    os.fsync(file.fileno())
            if entries or len(segments) == 1:
                break
            path.unlink()  # a segment torn before its first entry: append to the one before
            _fsync_directory(self.directory)
            segments.pop()
        self._last = entries[-1].offset if entries else first - 1
        self._epoch = entries[-1].epoch if entries else self._epoch_before(segments)
        self._size = good
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def _epoch_before(self, segments: list[int]) -> int:
        if len(segments) < 2:
            return 0
        data = (self.directory / segment_name(segments[-2])).read_bytes()
        entries = parse(data, segments[-2])[0]
        return entries[-1].epoch if entries else 0

    def _create_segment(self, first: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        fd = os.open(self.directory / segment_name(first), flags, 0o666)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._size = fd, 0
        _fsync_directory(self.directory)

    def append(self, payloads: Sequence[bytes], epoch: int) -> int:
        """Append ``payloads`` as consecutive entries with one write and one fdatasync."""
        if not self.writable:
            raise LogError(f"the write log in {self.directory} was opened read-only; open it writable=True")
        with self._append_lock:
            if self._failed is not None:
                raise LogError(
                    f"the write log in {self.directory} failed earlier ({self._failed}); "
                    "open it again, which recovers its tail"
                )
            if epoch < self._epoch:
                raise FencedError(
                    f"a writer of epoch {self._epoch} has appended to {self.directory}; "
                    f"this writer (epoch {epoch}) is deposed and must stop"
                )
            if not payloads:
                return self._last
            first = self._last + 1
            batch = b"".join(frame(first + i, epoch, p) for i, p in enumerate(payloads))
            try:
                if self._size and self._size + len(batch) > self.segment_bytes:
                    self._create_segment(first)
                view = memoryview(batch)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                os.fdatasync(self._fd)
                self._size += len(batch)
                self._last = first + len(payloads) - 1
                self._epoch = epoch
                self._publish_durable()
            except OSError as e:
                self._failed = e
                raise LogError(f"cannot append to the write log in {self.directory}: {e}") from e
            return self._last

    def _publish_durable(self) -> None:
        """Tell readers how far the log is durable: they read no further (one small write, no sync:
        after a crash the appender rewrites it on opening)."""
        os.pwrite(self._durable_fd, _OFFSET.pack(self._last), 0)

    def truncate(self, below: int) -> None:
        """Delete whole segments whose entries are all below ``below`` (never the last segment)."""
        segments = self._files.firsts()
        for first, after in itertools.pairwise(segments):
            if after > below:
                break
            try:
                (self.directory / segment_name(first)).unlink(missing_ok=True)
            except OSError as e:
                raise LogError(f"cannot truncate the write log in {self.directory}: {e}") from e
        _fsync_directory(self.directory)

    # --- reading ---------------------------------------------------------------------------------

    def _durable(self) -> int:
        """The last offset the appender has synced (entries written but not yet synced stay unread,
        so that nothing is visible before it is acknowledged)."""
        if self.writable:
            return self._last
        if self._durable_fd < 0:
            try:
                self._durable_fd = os.open(self.directory / _DURABLE, os.O_RDONLY)
            except FileNotFoundError:
                return 0  # no appender has opened this log yet
        data = os.pread(self._durable_fd, _OFFSET.size, 0)
        return _OFFSET.unpack(data)[0] if len(data) == _OFFSET.size else 0

    def read(self, after: int, limit: int = 1000) -> list[Entry]:
        """Up to ``limit`` durable entries after offset ``after``, in order."""
        with self._read_lock:
            try:
                limit = min(limit, self._durable() - after)
                if limit <= 0:
                    return []
                self._cursor, out = self._files.read(self._cursor, after, limit)
            except OSError as e:
                raise LogError(f"cannot read the write log in {self.directory}: {e}") from e
            return out

    def last_offset(self) -> int:
        """The last durable offset: known to the appender, read from ``.durable`` by others."""
        with self._read_lock:
            try:
                return self._durable()
            except OSError as e:
                raise LogError(f"cannot read the write log in {self.directory}: {e}") from e

    # --- watching --------------------------------------------------------------------------------

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` from a daemon thread after appends (and every ``recheck_interval``)."""
        with self._append_lock:
            if self._closed:
                raise LogError(f"the write log in {self.directory} is closed")
            stop = self._watchers.add(callback)
            if self._watch_thread is None:
                self._watch_thread = threading.Thread(
                    target=self._watch, name=f"marrow-log {self.directory.name}", daemon=True
                )
                self._watch_thread.start()
        return stop

    def _watch(self) -> None:
        notify: _Inotify | None = None
        try:
            while not self._stop.is_set():
                if notify is None:
                    try:
                        self.directory.mkdir(parents=True, exist_ok=True)
                        notify = _Inotify(self.directory, _IN_MODIFY | _IN_CREATE)
                    except OSError as e:
                        log.debug("tailing %s by polling: %s", self.directory, e)
                if notify is not None:
                    lost = self._wait(notify)
                    if lost:
                        notify.close()
                        notify = None
                else:
                    self._stop.wait(self.poll_interval)
                if self._stop.is_set():
                    break
                self._watchers.notify()
        finally:
            if notify is not None:
                notify.close()

    def _wait(self, notify: _Inotify) -> bool:
        """Wait for an event on a segment (or the recheck interval); True when the watch is gone."""
        import select

        poller = select.poll()
        poller.register(notify.fd, select.POLLIN)
        waited = 0.0
        step = 0.1  # look at the stop flag this often
        while not self._stop.is_set() and waited < self.recheck_interval:
            if poller.poll(step * 1000):
                _names, lost = notify.read()  # any event: a segment grew or appeared (or events overflowed)
                return lost
            else:
                waited += step
        return False

    def close(self) -> None:
        """Stop watching, release the append lock and the files; idempotent."""
        self._stop.set()
        with self._append_lock:
            self._closed = True
            thread = self._watch_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._read_lock:
            if self._cursor is not None:
                self._cursor.close()
            self._cursor = None
        for fd in (self._fd, self._lock_fd, self._durable_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = self._durable_fd = -1

    def __enter__(self) -> FileWriteLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
