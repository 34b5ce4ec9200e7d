"""Folding: the producer turns write log entries into a new store version, then the log is trimmed.

Lifecycle of one fold (:meth:`Folder.fold`)::

    read the entries above the last version's folded offset (up to the log's last offset)
      →  Producer.run_incremental: upserts and deletes by primary key, meta {"raw_offset": last}
      →  the producer publishes and announces the version (or rolls back: nothing else happens)
      →  on_fold(state): the writer's overlay drops what the version holds
      →  truncate the log below the offset the *previous* version holds

The log keeps one fold interval more than the newest version needs, so that clients still loading
the previous version can tail from its offset, and so that a retried request id is recognised for
at least one interval. :meth:`Folder.start` folds in a daemon thread every ``interval`` seconds
(default 30), or sooner once ``max_entries`` entries wait. The folder runs where the writer runs,
under the same lease: one active producer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from marrow.errors import MarrowError
from marrow.raw.log import Entry, WriteLog
from marrow.raw.ops import BulkUpdate
from marrow.raw.overlay import FOLDED_OFFSET, folded_offset, normal_key
from marrow.raw.record import RecordClasses
from marrow.store import Incremental, Producer, ReadState
from marrow.store.producer import CycleReport

__all__ = ["Folder"]

log = logging.getLogger(__name__)


class Folder:
    """Folds the write log into versions through ``producer``; see the module docstring."""

    def __init__(
        self,
        producer: Producer,
        log: WriteLog,
        *,
        interval: float = 30.0,
        max_entries: int = 10_000,
        on_fold: Callable[[ReadState, int | None], None] | None = None,
    ):
        if interval <= 0 or max_entries <= 0:
            raise ValueError("a fold interval and entry count must be positive")
        self.producer = producer
        self.log = log
        self.interval = interval
        self.max_entries = max_entries
        self.on_fold = on_fold
        self.classes = RecordClasses(producer.schema)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._unwatch: Callable[[], None] | None = None
        self.last_error: str | None = None

    @property
    def folded(self) -> int:
        """The offset folded into the producer's last version."""
        return folded_offset(self.producer.state)

    def _entries(self, after: int, upto: int) -> list[Entry]:
        out: list[Entry] = []
        while after < upto:
            entries = [e for e in self.log.read(after, min(10_000, upto - after)) if e.offset <= upto]
            if not entries:
                break
            out += entries
            after = entries[-1].offset
        return out

    def fold(self) -> CycleReport | None:
        """Fold every entry up to the log's current last offset; None when there was nothing to fold
        (or the entries changed nothing)."""
        with self._lock:
            start, upto = self.folded, self.log.last_offset()
            entries = self._entries(start, upto)
            updates = [BulkUpdate.decode(e.payload) for e in entries]
            if not any(u.changes for u in updates):
                return None
            record = self.classes.record

            def changes(inc: Incremental) -> None:
                for update in updates:
                    for c in update.changes:
                        if c.values is None:
                            inc.delete(c.type, normal_key(c.key))
                        else:
                            inc.add_or_modify(record(c.type, c.values), c.type)

            report = self.producer.run_incremental(changes, meta={FOLDED_OFFSET: entries[-1].offset})
            if report is None:
                return None
            state = self.producer.state
            assert state is not None
            # keep the entries of the version before (clients loading it tail from its offset)
            truncate_below = start + 1 if start > 0 else None
            if self.on_fold is not None:
                self.on_fold(state, truncate_below)
            if truncate_below is not None:
                self.log.truncate(truncate_below)
            log.info("folded offsets %d..%d into version %d", start + 1, entries[-1].offset, report.version)
            return report

    # --- in the background -----------------------------------------------------------------------

    def start(self) -> None:
        """Fold every ``interval`` seconds, or once ``max_entries`` entries wait, in a daemon thread."""
        if self._thread is not None:
            return
        self._unwatch = self.log.watch(self._check_size)
        self._thread = threading.Thread(target=self._run, name="marrow-folder", daemon=True)
        self._thread.start()

    def _check_size(self) -> None:
        if self.log.last_offset() - self.folded >= self.max_entries:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            started = time.perf_counter()
            try:
                self.fold()
                self.last_error = None
            except MarrowError as e:  # the entries stay in the log; the next fold tries again
                self.last_error = str(e)
                log.warning("fold failed, will retry: %s", e)
            except Exception:
                log.exception("unexpected error while folding")
            log.debug("fold took %.3f s", time.perf_counter() - started)

    def close(self) -> None:
        """Stop folding in the background (a fold under way finishes first)."""
        self._stop.set()
        self._wake.set()
        if self._unwatch is not None:
            self._unwatch()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
