"""Blobs and announcements in a local directory: Marrow's embedded default.

* :class:`FilesystemBlobStore` — one file per blob, named by :attr:`BlobRef.name`, retrieved as a
  read-only :class:`mmap.mmap`, so the worker processes of one host share its pages;
* :class:`FilesystemAnnouncer` — writes ``announced.json`` (``{"version": N, "announced_at": ...}``);
* :class:`FilesystemAnnouncementWatcher` — reads it, and tells subscribers of each new version from a
  daemon thread woken by inotify (Linux, through ``ctypes``; no dependency) or by polling.

Every write is crash-safe: the bytes go to a temp file in the same directory (a name
:meth:`BlobRef.parse` refuses, so listings skip it), are fsynced, and only then take their name. A
reader therefore sees a file whole or not at all.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import secrets
import select
import struct
import sys
import threading
import zlib
from pathlib import Path
from typing import Literal

from marrow.errors import BlobError
from marrow.store._accel import speedups
from marrow.store._watch import PollingWatcher, encode_announcement
from marrow.store.blobstore import BlobRef, Buffer, ListingRetriever, as_bytes_view

__all__ = [
    "ANNOUNCEMENT",
    "FilesystemAnnouncementWatcher",
    "FilesystemAnnouncer",
    "FilesystemBlobStore",
    "MappedFile",
]

log = logging.getLogger(__name__)

ANNOUNCEMENT = "announced.json"  #: the announcement's file name, beside the blobs (which never parse as it)
_CHUNK = 4 << 20
# A multiple of every page size (madvise takes page-aligned starts). Large, because each chunk is one
# release and one retake of the GIL, and a thread descheduled while it holds the GIL stalls every
# other thread of the process; small next to a version, which it is checked chunk by chunk to bound
# how much of it is ever resident at once.
_CRC_CHUNK = 8 << 20
_PAUSED_CHUNK, _PAUSE_US = 1 << 20, 20  # the C accelerator's check: see MappedFile.crc32
_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)  # Linux and the BSDs; elsewhere pages simply stay
# errnos with which a filesystem says it cannot hard-link (FAT, some FUSE and network mounts)
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}


def _write_temp(directory: Path, name: str, data: memoryview) -> Path:
    """Write ``data`` to a new, fsynced temp file in ``directory``; the caller renames or removes it."""
    directory.mkdir(parents=True, exist_ok=True)
    temp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
    # 0o666 less the umask, as for any file a user writes (mkstemp's 0o600 would hide blobs from
    # consumers running as another user)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _same_bytes(path: Path, data: memoryview) -> bool:
    with path.open("rb") as file:
        if os.fstat(file.fileno()).st_size != len(data):
            return False
        for offset in range(0, len(data), _CHUNK):
            if file.read(_CHUNK) != data[offset : offset + _CHUNK].tobytes():
                return False
    return True


class MappedFile(mmap.mmap):
    """A blob file mapped read-only, as :class:`FilesystemBlobStore` retrieves it.

    Checking its CRC (:meth:`crc32`, which ``read_header`` uses) reads it in chunks and drops each
    chunk's pages from this process's page tables once read (``MADV_DONTNEED``; for a shared file
    mapping the page cache keeps them, and a later read maps them back). So checking a new version
    does not make the whole file resident in every process that loads it: its pages come in as
    readers touch them, and a process's memory grows by what it reads, not by what it checks.
    """

    def crc32(self, end: int) -> int:
        """CRC-32 of bytes ``[0, end)``, leaving none of them resident in this process. Through the C
        accelerator, one call without the GIL: a loop of Python calls would take the GIL back from a
        busy reader thread once per chunk, waiting up to CPython's switch interval (5 ms) each time.
        It pauses briefly between steps, so that a reader placed on the same core is not held for a
        whole scheduler tick (benchmarks/RESULTS.md, lifecycle run 8)."""
        if speedups is not None and hasattr(speedups, "crc32") and _DONTNEED is not None and not self.closed:
            # in 1 MiB steps with a 20 µs sleep between: a reader that shares a core with this thread
            # then waits at most a step (≈ 0.2 ms; 0.8 where the CPU has no carry-less multiply), not
            # the scheduler's tick (4 ms here)
            return int(speedups.crc32(self, end, _PAUSED_CHUNK, _DONTNEED, _PAUSE_US))
        crc = 0
        with memoryview(self) as view:
            for start in range(0, end, _CRC_CHUNK):
                stop = min(end, start + _CRC_CHUNK)
                crc = zlib.crc32(view[start:stop], crc)
                self.drop(start, stop - start)
        return crc

    def drop(self, start: int = 0, length: int | None = None) -> None:
        """Drop this process's pages of bytes ``[start, start + length)`` (all by default); a page read
        again comes back from the file. Without the GIL where the C accelerator is built: dropping a
        version's pages takes a millisecond or more, which reader threads need not wait."""
        if _DONTNEED is None or self.closed:
            return
        length = len(self) - start if length is None else length
        if speedups is not None and hasattr(speedups, "madvise"):
            speedups.madvise(self, start, length, _DONTNEED)
        else:
            self.madvise(_DONTNEED, start, length)


class FilesystemBlobStore(ListingRetriever):
    """A :class:`~marrow.store.blobstore.BlobStore` in one directory, safe for many processes.

    Lifecycle: the directory is created on the first publish; retrieving from a directory that does
    not exist yet finds nothing. Retrieved blobs are read-only ``mmap`` objects (``b""`` for an empty
    blob): they stay valid after the file is removed, since the mapping holds the inode; close them, or
    drop them, to release it.

    Invariants: a blob appears under its name whole or not at all (temp file, fsync, then a hard link
    that never overwrites — where the filesystem cannot link, a rename after an existence check). A
    name never changes bytes: republishing equal bytes is a no-op, other bytes raise
    :class:`~marrow.errors.BlobError`, also when two publishers race. Any other failure of the
    filesystem is a BlobError too; a blob removed between listing and reading is skipped.
    """

    snapshot_by_name = True  # a missing file costs an open(2)

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FilesystemBlobStore({str(self.directory)!r})"

    def publish(self, ref: BlobRef, data: Buffer) -> None:
        """Store ``data`` as the file ``ref.name``, atomically and durably."""
        view = as_bytes_view(data)
        path = self.directory / ref.name
        try:
            if path.exists():
                self._check_same(ref, path, view)
                return
            temp = _write_temp(self.directory, ref.name, view)
            try:
                os.link(temp, path)  # unlike rename, fails rather than replace a racing publisher's blob
            except FileExistsError:
                self._check_same(ref, path, view)
            except OSError as error:
                if error.errno not in _NO_LINK:
                    raise
                if path.exists():
                    self._check_same(ref, path, view)
                else:
                    os.replace(temp, path)
            finally:
                temp.unlink(missing_ok=True)
            _fsync_directory(self.directory)
        except OSError as error:
            raise BlobError(f"cannot publish {ref.name} to {self.directory}: {error}") from error

    def _check_same(self, ref: BlobRef, path: Path, view: memoryview) -> None:
        if not _same_bytes(path, view):
            raise BlobError(
                f"blob {ref.name} in {self.directory} is already published with other bytes; "
                "a published blob never changes — publish under a new version, or remove it first"
            )

    def _read(self, ref: BlobRef) -> Buffer | None:
        """The blob mapped read-only, or None when it was removed since the listing."""
        try:
            return self._map(self.directory / ref.name)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise BlobError(f"cannot read {ref.name} from {self.directory}: {error}") from error

    @staticmethod
    def _map(path: Path) -> Buffer:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            if os.fstat(fd).st_size == 0:
                return b""  # mmap refuses empty files
            return MappedFile(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)  # the mapping keeps its own reference to the file

    def refs(self) -> list[BlobRef]:
        """Every blob in the directory, sorted; temp files and other names are ignored."""
        found = []
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    try:
                        found.append(BlobRef.parse(entry.name))
                    except ValueError:
                        continue
        except FileNotFoundError:
            return []
        except OSError as error:
            raise BlobError(f"cannot list blobs in {self.directory}: {error}") from error
        return sorted(found)

    def remove(self, ref: BlobRef) -> None:
        """Delete one blob file; mappings already handed out stay valid. Missing is not an error."""
        try:
            (self.directory / ref.name).unlink(missing_ok=True)
        except OSError as error:
            raise BlobError(f"cannot remove {ref.name} from {self.directory}: {error}") from error


class FilesystemAnnouncer:
    """An :class:`~marrow.store.blobstore.Announcer` that writes ``announced.json`` in ``directory``.

    Each announcement replaces the file atomically (temp file, fsync, rename), so a reader sees the
    old announcement or the new one, never a mix. The directory may be the blob store's own.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def announce(self, version: int) -> None:
        """Make ``version`` the announced one; raises BlobError when the file cannot be written."""
        data = memoryview(encode_announcement(version))
        try:
            temp = _write_temp(self.directory, ANNOUNCEMENT, data)
            try:
                os.replace(temp, self.directory / ANNOUNCEMENT)
            finally:
                temp.unlink(missing_ok=True)
            _fsync_directory(self.directory)
        except OSError as error:
            raise BlobError(f"cannot announce version {version} in {self.directory}: {error}") from error


# inotify(7); IN_NONBLOCK and IN_CLOEXEC are O_NONBLOCK and O_CLOEXEC by definition
_IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_DELETE_SELF, _IN_MOVE_SELF = 0x8, 0x80, 0x400, 0x800
_IN_Q_OVERFLOW, _IN_IGNORED = 0x4000, 0x8000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len — then len bytes of NUL-padded name


class _Inotify:
    """One inotify watch on a directory, through libc by ctypes. Raises OSError where unavailable.

    ``extra_mask`` adds inotify(7) events to those watched (the write log tails with IN_MODIFY)."""

    def __init__(self, directory: Path, extra_mask: int = 0) -> None:
        if not sys.platform.startswith("linux"):
            raise OSError(errno.ENOSYS, "inotify is Linux only")
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            init, add_watch = libc.inotify_init1, libc.inotify_add_watch
        except AttributeError as error:
            raise OSError(errno.ENOSYS, "this libc has no inotify") from error
        init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
        add_watch.argtypes, add_watch.restype = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32], ctypes.c_int
        self.fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        mask = _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_DELETE_SELF | _IN_MOVE_SELF | extra_mask
        if add_watch(self.fd, os.fsencode(directory), mask) < 0:
            code = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(code, os.strerror(code), str(directory))

    def read(self) -> tuple[set[str], bool]:
        """Drain pending events: the names they concern (all, after an overflow), and whether the
        watch is gone (the directory was removed or moved)."""
        names: set[str] = set()
        lost = False
        while True:
            try:
                buffer = os.read(self.fd, 65536)
            except BlockingIOError:
                return names, lost
            offset = 0
            while offset + _EVENT.size <= len(buffer):
                _wd, mask, _cookie, length = _EVENT.unpack_from(buffer, offset)
                offset += _EVENT.size
                names.add(os.fsdecode(buffer[offset : offset + length].rstrip(b"\0")))
                offset += length
                if mask & _IN_Q_OVERFLOW:  # events were dropped: any file may have changed
                    names.add(ANNOUNCEMENT)
                lost |= bool(mask & (_IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF))

    def close(self) -> None:
        os.close(self.fd)


class FilesystemAnnouncementWatcher(PollingWatcher):
    """Watches ``announced.json`` in ``directory``; see :class:`~marrow.store._watch.PollingWatcher`
    for the lifecycle.

    With ``inotify=True`` (the default) and on Linux, the thread sleeps until the directory reports a
    rename to, or a finished write of, the announcement, and also re-reads it every
    ``recheck_interval`` seconds in case an event was lost (network filesystems send none). Elsewhere,
    with ``inotify=False``, or if the directory does not exist yet or is removed, it polls every
    ``poll_interval`` seconds. :attr:`watching_by` says which, once subscribed.
    """

    recheck_interval = 1.0

    def __init__(
        self, directory: str | os.PathLike[str], poll_interval: float = 0.05, *, inotify: bool = True
    ) -> None:
        self.directory = Path(directory)
        super().__init__(str(self.directory / ANNOUNCEMENT), poll_interval)
        self._use_inotify = inotify
        self._inotify: _Inotify | None = None
        self._wake_pipe: tuple[int, int] | None = None
        self._pipe_lock = threading.Lock()
        self.watching_by: Literal["inotify", "polling"] | None = None

    def read_announcement(self) -> bytes | None:
        """The bytes of ``announced.json``, or None when it does not exist."""
        try:
            return (self.directory / ANNOUNCEMENT).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise BlobError(f"cannot read the announcement in {self.directory}: {error}") from error

    def _watch(self) -> None:
        self.watching_by = "polling"
        if not self._use_inotify:
            return
        try:
            self._inotify = _Inotify(self.directory)
        except OSError as error:
            log.info("watching %s by polling: %s", self.directory, error)
            return
        self._wake_pipe = os.pipe()
        self.watching_by = "inotify"

    def _wait(self) -> None:
        if self._inotify is None or self._wake_pipe is None:
            super()._wait()
            return
        poller = select.poll()
        poller.register(self._inotify.fd, select.POLLIN)
        poller.register(self._wake_pipe[0], select.POLLIN)
        while not self._stop.is_set():
            ready = poller.poll(self.recheck_interval * 1000)
            if not any(fd == self._inotify.fd for fd, _ in ready):
                return  # woken to stop, or time for the periodic re-read
            names, lost = self._inotify.read()
            if lost:
                log.info("the inotify watch on %s is gone; polling instead", self.directory)
                self._inotify.close()
                self._inotify = None
                self.watching_by = "polling"
                return
            if ANNOUNCEMENT in names:
                return
            # another file changed (a blob, a temp file): keep waiting

    def _wake(self) -> None:
        with self._pipe_lock:  # never write to a descriptor number the thread has closed and reused
            if self._wake_pipe is not None:
                os.write(self._wake_pipe[1], b"\0")

    def _unwatch(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
        with self._pipe_lock:
            if self._wake_pipe is not None:
                for fd in self._wake_pipe:
                    os.close(fd)
                self._wake_pipe = None
