"""The writer lease: at most one active writer (and folding producer) per namespace.

A :class:`Lease` is acquired before a writer recovers and appends; each acquisition yields an
**epoch**, higher than every epoch before it, which the writer stamps on what it appends so that
the write log can refuse a deposed writer (fencing). Implementations:

* :class:`InMemoryLease` — one process (tests);
* :class:`FileLease` — the embedded default: an OS file lock (``flock``) on ``lease.lock``; the
  kernel releases it when the holder's process dies, however it dies, so a standby blocked in
  :meth:`FileLease.acquire` takes over at once. The epoch counter lives beside it in ``lease.epoch``;
* :class:`~marrow.raw.natslease.NatsLease` — across machines, a key in a NATS Key-Value bucket
  whose entries expire unless renewed (see that module for why NATS and not PostgreSQL).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Protocol

from marrow.errors import LeaseError
from marrow.store.filesystem import _fsync_directory, _write_temp

__all__ = ["FileLease", "InMemoryLease", "Lease"]


class Lease(Protocol):
    def acquire(self, timeout: float | None = None) -> int:
        """Become the holder, waiting up to ``timeout`` seconds (None: as long as it takes); returns
        the new epoch. Raises :class:`~marrow.errors.LeaseError` when the wait runs out."""

    def held(self) -> bool:
        """Whether this holder still holds the lease (False once released, expired or taken)."""

    def release(self) -> None:
        """Give the lease up (idempotent); a standby may then acquire it."""


class InMemoryLease:
    """A :class:`Lease` within one process: a lock and a counter shared by every holder object made
    with :meth:`holder` (one per would-be writer)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch = 0
        self._holder: object | None = None

    def holder(self) -> _InMemoryHolder:
        return _InMemoryHolder(self)


class _InMemoryHolder:
    def __init__(self, shared: InMemoryLease) -> None:
        self._shared = shared
        self._held = False

    def acquire(self, timeout: float | None = None) -> int:
        if not self._shared._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise LeaseError(f"another writer holds the lease; waited {timeout} s")
        self._shared._epoch += 1
        self._shared._holder = self
        self._held = True
        return self._shared._epoch

    def held(self) -> bool:
        return self._held and self._shared._holder is self

    def release(self) -> None:
        if self.held():
            self._held = False
            self._shared._holder = None
            self._shared._lock.release()


class FileLease:
    """A :class:`Lease` on ``directory/lease.lock`` (see the module docstring). One object is one
    would-be holder; within a process, use one object per writer."""

    poll_interval = 0.01  #: how often a bounded wait retries the lock

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._fd = -1
        self.epoch = 0

    def acquire(self, timeout: float | None = None) -> int:
        if self._fd >= 0:
            raise LeaseError(f"this object already holds the lease in {self.directory}")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / "lease.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise LeaseError(f"cannot open the lease in {self.directory}: {e}") from e
        try:
            self._lock(fd, timeout)
            epoch = self._read_epoch() + 1
            data = memoryview(f"{epoch}\n".encode())
            temp = _write_temp(self.directory, "lease.epoch", data)
            os.replace(temp, self.directory / "lease.epoch")
            _fsync_directory(self.directory)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self.epoch = fd, epoch
        return epoch

    def _lock(self, fd: int, timeout: float | None) -> None:
        if timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LeaseError(
                        f"another writer holds the lease in {self.directory} (waited {timeout:g} s); "
                        "stop it, or wait with a longer timeout to stand by"
                    ) from None
                time.sleep(self.poll_interval)

    def _read_epoch(self) -> int:
        try:
            return int((self.directory / "lease.epoch").read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as e:
            raise LeaseError(f"cannot read {self.directory / 'lease.epoch'}: {e}; fix or remove it") from e

    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = -1
