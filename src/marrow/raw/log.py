"""The write log: the durable, ordered record of acknowledged bulk updates.

A writer appends; local clients and the folding producer read. Each entry has an **offset**: offsets
increase by one with every entry (the consistency token a strong read waits for) and are never
reused, also after the log is truncated. Two small protocols, and one in-memory implementation:

* :class:`LogWriter` — ``append`` a batch of payloads durably, ``truncate`` below an offset;
* :class:`LogReader` — ``read`` entries after an offset, ``last_offset``, ``watch`` for new ones.

Implementations: :class:`InMemoryWriteLog` here (tests, one process),
:class:`~marrow.raw.filelog.FileWriteLog` (the embedded default: segment files, group commit, fsync)
and :class:`~marrow.raw.natslog.NatsWriteLog` (a replicated JetStream stream).

Invariants every implementation keeps:

* ``append`` returns only once every entry of the batch is durable, with consecutive offsets;
  when it raises, any of them may or may not be stored (a retry with the same request id is safe);
* a reader sees an entry whole or not at all, and entries in offset order without gaps, apart from
  those truncated (``read`` below the first retained offset raises
  :class:`~marrow.errors.LogTruncatedError`);
* fencing: an append with an epoch lower than the highest epoch in the log is refused with
  :class:`~marrow.errors.FencedError`, so a deposed writer cannot append once its successor has.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from marrow.errors import FencedError, LogTruncatedError
from marrow.store._watch import Subscribers

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of the write log: its offset, the epoch of the writer that appended it, its bytes."""

    offset: int
    epoch: int
    payload: bytes


class LogWriter(Protocol):
    def append(self, payloads: Sequence[bytes], epoch: int) -> int:
        """Append ``payloads`` as consecutive entries, durably; returns the offset of the last one.

        Raises :class:`~marrow.errors.FencedError` when a writer of a higher epoch has appended, and
        :class:`~marrow.errors.LogError` when the log cannot take the entries."""

    def truncate(self, below: int) -> None:
        """Allow the log to drop entries with offsets below ``below`` (folded into a version)."""


class LogReader(Protocol):
    def read(self, after: int, limit: int = 1000) -> list[Entry]:
        """Up to ``limit`` entries with offsets above ``after``, in order (empty when none yet)."""

    def last_offset(self) -> int:
        """The offset of the last entry in the log (0 when nothing was ever appended)."""

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` (from another thread) whenever entries may have been appended, and now
        and then regardless; returns a function that stops the calls."""


class WriteLog(LogWriter, LogReader, Protocol):
    """A log one can append to and read from."""


class Watchers:
    """The callbacks of a log's ``watch``: added and removed from any thread, called in turn by the
    log's watching thread; a callback that raises is logged and the others still run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._tokens = itertools.count()

    def add(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Register ``callback``; returns the function that removes it."""
        token = next(self._tokens)
        with self._lock:
            self._callbacks[token] = callback

        def stop() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return stop

    def notify(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("write log watcher %r failed", callback)


class InMemoryWriteLog:
    """A :class:`WriteLog` in a list, for tests and one process; thread-safe.

    ``watch`` callbacks run synchronously on the appending thread, before ``append`` returns.
    """

    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._first = 1  # offset of _entries[0]
        self._epoch = 0
        self._lock = threading.Lock()
        self._subscribers = Subscribers()

    def append(self, payloads: Sequence[bytes], epoch: int) -> int:
        with self._lock:
            if epoch < self._epoch:
                raise FencedError(
                    f"a writer of epoch {self._epoch} has appended; this writer (epoch {epoch}) is deposed"
                )
            self._epoch = epoch
            offset = self._first + len(self._entries) - 1
            for payload in payloads:
                offset += 1
                self._entries.append(Entry(offset, epoch, bytes(payload)))
        self._subscribers.deliver(offset)
        return offset

    def truncate(self, below: int) -> None:
        with self._lock:
            drop = max(0, min(below - self._first, len(self._entries)))
            del self._entries[:drop]
            self._first += drop

    def read(self, after: int, limit: int = 1000) -> list[Entry]:
        with self._lock:
            if after + 1 < self._first:
                raise LogTruncatedError(
                    f"entries after offset {after} were truncated (the log starts at {self._first}); "
                    "load the latest version and read from its folded offset",
                    self._first,
                )
            start = after + 1 - self._first
            return self._entries[start : start + limit]

    def last_offset(self) -> int:
        with self._lock:
            return self._first + len(self._entries) - 1

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._subscribers.add(lambda _offset: callback())
