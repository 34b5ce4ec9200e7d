"""The writer: validates bulk updates, checks their expectations, appends them durably, acknowledges.

Lifecycle::

    writer = Writer(schema, log, lease)
    writer.start(restore)       # acquire the lease (a standby waits here), load the base version,
                                # recover the in-flight entries from the log, append a fence
    offset = writer.bulk_update([Upsert(title)], expect=[Expect.absent("Title", 7)], request_id="r1")
    writer.rebase(state)        # after a fold: the overlay drops what the new version holds
    writer.close()              # release the lease

Invariants:

* a bulk update is applied whole or refused whole: invalid records, a record named twice, or one
  failed expectation refuse it (:class:`~marrow.errors.RecordError`,
  :class:`~marrow.errors.ConflictError` naming every conflicting key) and nothing is appended;
* ``bulk_update`` returns the entry's offset only once the log holds it durably (group commit:
  concurrent calls are checked one after another, each against the effect of those before it, and
  appended with one log append);
* idempotency: a request id seen in any entry the log still holds (at least one fold interval) is
  not applied again — the offset it was first given is returned;
* after ``start``, no acknowledged write is lost: the writer's head state is the base version plus
  every entry above its folded offset, read back from the log; the fence entry it appends makes a
  deposed writer's later appends fail (:class:`~marrow.errors.FencedError`);
* a failed append leaves the writer *broken* until it has re-read the log's tail (done at the next
  call), since some of the batch may have been stored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from marrow.errors import ConflictError, FencedError, LogError, LogTruncatedError, RecordError, WriteError
from marrow.raw.lease import Lease
from marrow.raw.log import WriteLog
from marrow.raw.ops import BulkUpdate, Change, Expect, Op, Validator, plain
from marrow.raw.overlay import Overlay, folded_offset, normal_key
from marrow.raw.view import View
from marrow.store import ReadState, Schema

__all__ = ["Writer"]

log = logging.getLogger(__name__)

_MISSING = object()


@dataclass(eq=False)
class _Request:
    request_id: str | None
    changes: list[Change]
    expect: list[tuple[Expect, Any]]  # (expectation, normal key)
    offset: int = 0
    error: BaseException | None = None
    done: bool = False
    same_as: _Request | None = None  # a duplicate request id within one batch
    followers: list[_Request] = field(default_factory=list)


class Writer:
    """The one active writer of a namespace; see the module docstring."""

    def __init__(self, schema: Schema, log: WriteLog, lease: Lease, *, max_batch: int = 1000):
        self.schema = schema
        self.log = log
        self.lease = lease
        self.max_batch = max_batch
        self.validator = Validator(schema)
        self.epoch = 0
        self.head: Overlay = Overlay(schema, None)
        self._requests: dict[str, int] = {}  # request id -> offset, for entries the log holds
        self._last_write: dict[tuple[str, Any], int] = {}  # (type, key) -> offset of its last write
        self._known_from = 0  # writes at or below this offset are not in _last_write
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._flushing = False
        self._broken: BaseException | None = None
        self._started = False
        self.folder: Any = None  #: the Folder running with this writer, if any (set by its owner)
        self.on_close: list[Callable[[], None]] = []  #: called by close(), first to last

    # --- starting --------------------------------------------------------------------------------

    def start(
        self, restore: Callable[[], ReadState | None] | None = None, timeout: float | None = None
    ) -> int:
        """Acquire the lease, load the base (``restore()``, called once the lease is held), recover
        the in-flight entries and append a fence. Returns the offset the writer starts at."""
        self.epoch = self.lease.acquire(timeout)
        try:
            base = restore() if restore is not None else None
            with self._cond:
                for attempt in range(1, 11):
                    self.head = Overlay(self.schema, base)
                    self._requests, self._last_write = {}, {}
                    self._recover()
                    try:
                        self._append_fence()
                        break
                    except FencedError:  # the deposed writer appended after we read: read again
                        if attempt == 10:
                            raise
                self._started = True
                return self.head.offset
        except BaseException:
            self.lease.release()
            raise

    def _recover(self) -> None:
        """Read every entry the log holds: the overlay above the base, request ids, last writes."""
        floor = self.head.floor
        try:
            after = 0
            entries = self.log.read(after)
        except LogTruncatedError as e:
            after = e.first - 1
            if after > floor:
                raise WriteError(
                    f"the write log starts at offset {e.first}, above the base version's folded offset "
                    f"{floor}: entries between are lost to this writer; restore a newer version"
                ) from e
            entries = self.log.read(after)
        self._known_from = after
        while entries:
            for entry in entries:
                self._applied(entry.offset, BulkUpdate.decode(entry.payload))
            entries = self.log.read(entries[-1].offset)
        self.head.offset = max(self.head.offset, self.log.last_offset(), floor)

    def _applied(self, offset: int, update: BulkUpdate) -> None:
        """Make a durable entry part of the head state and the bookkeeping."""
        if update.request_id is not None:
            self._requests[update.request_id] = offset
        for change in update.changes:
            self._last_write[(change.type, normal_key(change.key))] = offset
        self.head.apply(offset, update)

    def _append_fence(self) -> None:
        offset = self.log.append([BulkUpdate(None).encode()], self.epoch)
        self.head.apply(offset, BulkUpdate(None))
        log.info("writer of epoch %d starts at offset %d", self.epoch, offset)

    # --- writing ---------------------------------------------------------------------------------

    def bulk_update(
        self, ops: Iterable[Op], *, expect: Sequence[Expect] = (), request_id: str | None = None
    ) -> int:
        """Apply ``ops`` atomically if every expectation holds; returns the offset once durable."""
        if not self._started:
            raise WriteError("the writer is not started: call start() first")
        if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= 200):
            raise RecordError(f"a request id is a string of 1 to 200 characters, not {request_id!r}")
        changes = self.validator.changes(ops)
        expectations = [(e, self.validator.key(e.type, e.key)) for e in expect]
        for e, _ in expectations:
            for name in e.fields or {}:
                self.validator.value(e.type, name, e.fields[name])  # type: ignore[index]
        request = _Request(request_id, changes, expectations)
        with self._cond:
            self._queue.append(request)
            while not request.done:
                if self._flushing:
                    self._cond.wait()
                    continue
                self._flushing = True
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                self._cond.release()
                try:
                    self._process(batch)
                finally:
                    self._cond.acquire()
                    self._flushing = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        return request.offset

    def _process(self, batch: list[_Request]) -> None:
        """Check, append and apply one batch (only ever one thread at a time)."""
        try:
            if self._broken is not None:
                self._resync()
            if not self.lease.held():
                raise FencedError(f"this writer (epoch {self.epoch}) lost its lease; another may be writing")
            accepted = self._check(batch)
            if accepted:
                payloads = [BulkUpdate(r.request_id, r.changes).encode() for r in accepted]
                try:
                    last = self.log.append(payloads, self.epoch)
                except LogError as e:
                    self._broken = e
                    raise
                for i, r in enumerate(accepted):
                    r.offset = last - len(accepted) + 1 + i
                    self._applied(r.offset, BulkUpdate(r.request_id, r.changes))
        except BaseException as e:
            for r in batch:
                if not r.done and r.error is None and r.offset == 0:
                    r.error = e
        for r in batch:
            if r.same_as is not None:
                r.offset, r.error = r.same_as.offset, r.same_as.error
            r.done = True

    def _resync(self) -> None:
        """After a failed append: apply whatever of it the log did store, then write again."""
        while True:
            entries = self.log.read(self.head.offset)
            if not entries:
                break
            for entry in entries:
                self._applied(entry.offset, BulkUpdate.decode(entry.payload))
        self._broken = None

    def _check(self, batch: list[_Request]) -> list[_Request]:
        """The requests of ``batch`` to append, in order; the others are resolved here."""
        accepted: list[_Request] = []
        scratch: dict[tuple[str, Any], Any] = {}  # records written by earlier requests of the batch
        in_batch: dict[str, _Request] = {}
        view = View(self.head)
        for r in batch:
            if r.request_id is not None:
                if r.request_id in self._requests:
                    r.offset = self._requests[r.request_id]
                    continue
                if r.request_id in in_batch:
                    r.same_as = in_batch[r.request_id]
                    continue
            try:
                self._check_referenced(r.changes, scratch, view)
            except RecordError as e:
                r.error = e
                continue
            conflicts = [x for e, key in r.expect if (x := self._conflict(e, key, scratch, view)) is not None]
            if conflicts:
                shown = "; ".join(f"{t} {k!r}: expected {want}, found {got}" for t, k, want, got in conflicts)
                r.error = ConflictError(
                    f"conditional bulk update refused, nothing applied: {shown}", conflicts
                )
                continue
            for c in r.changes:
                scratch[(c.type, normal_key(c.key))] = (
                    None if c.values is None else self.head.classes.record(c.type, c.values)
                )
            if r.request_id is not None:
                in_batch[r.request_id] = r
            accepted.append(r)
        return accepted

    def _check_referenced(
        self, changes: list[Change], scratch: dict[tuple[str, Any], Any], view: View
    ) -> None:
        """Refuse changing a record of a keyed type that other types refer to (see ops)."""
        row = self.validator.row
        for change in changes:
            for type, key, values in self.validator.keyed_records(change):
                current = scratch.get((type, key), _MISSING)
                if current is _MISSING:
                    current = view[type].get(key)
                if current is not None and plain(row(type, current)) != values:
                    raise RecordError(
                        f"{type} {key!r} is referred to by other types and cannot be changed by a bulk "
                        "update (referrers would keep the old record): write it unchanged, or under a new key"
                    )

    def _conflict(
        self, e: Expect, key: Any, scratch: dict[tuple[str, Any], Any], view: View
    ) -> tuple[str, Any, str, str] | None:
        """None when the expectation holds, else (type, key, expected, found)."""
        current = scratch.get((e.type, key), _MISSING)
        if current is _MISSING:
            current = view[e.type].get(key)
        if e.present is not None and (current is not None) != e.present:
            return (e.type, key, "present" if e.present else "absent", "absent" if e.present else "present")
        if e.fields:
            if current is None:
                return (e.type, key, "present", "absent")
            value = self.validator.value
            for name, want in e.fields.items():
                got = getattr(current, name)
                if value(e.type, name, want) != value(e.type, name, got):
                    return (e.type, key, f"{name}={want!r}", f"{name}={got!r}")
        if e.version is not None:
            if (e.type, key) in scratch:
                return (e.type, key, f"unchanged since {e.version}", "written in the same batch")
            last = self._last_write.get((e.type, key))
            if last is not None and last > e.version:
                return (e.type, key, f"unchanged since {e.version}", f"written at offset {last}")
            if last is None and e.version < self._known_from:
                return (
                    e.type,
                    key,
                    f"unchanged since {e.version}",
                    f"unknown: writes up to offset {self._known_from} were truncated; read it again",
                )
        return None

    # --- folding ---------------------------------------------------------------------------------

    def rebase(self, base: ReadState, truncated_below: int | None = None) -> None:
        """Take a new base version (after a fold); forget bookkeeping of entries the log dropped."""
        with self._cond:
            while self._flushing:
                self._cond.wait()
            if folded_offset(base) >= self.head.floor:
                self.head = self.head.rebased(base)
            if truncated_below is not None and truncated_below - 1 > self._known_from:
                self._known_from = truncated_below - 1
                cut = self._known_from
                self._requests = {k: o for k, o in self._requests.items() if o > cut}
                self._last_write = {k: o for k, o in self._last_write.items() if o > cut}

    # --- reading ---------------------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """The offset of the last entry this writer knows durable."""
        return self.head.offset

    def view(self) -> View:
        """The head state: the base plus every acknowledged write (strong by construction)."""
        return View(self.head)

    def close(self) -> None:
        """Stop writing, run the ``on_close`` hooks (a folder stops), release the lease."""
        with self._cond:
            self._started = False
        try:
            for hook in self.on_close:
                hook()
        finally:
            self.on_close.clear()
            self.lease.release()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
