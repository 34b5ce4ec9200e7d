"""Ingest: validate, filter and buffer impression events, and write them to the store in batches.

Lifecycle of a batch given to :meth:`Collector.submit`: each event is validated (rejected ones get a
reason), filtered (events seen too little or too briefly are taken but not stored, with a reason),
keyed by the dedup key, and the rest enter the bounded buffer **all together or not at all**: a
batch that does not fit raises :class:`~marrow.errors.BufferFullError` (retry after N seconds), and
while the store is failing new batches raise :class:`~marrow.errors.StoreUnavailableError` — nothing
is dropped silently. One flusher thread writes the buffer to the store in batches (group commit: what
arrived while one batch was written goes in the next), then tells the cache about the impressions that
were new (duplicates are not, so the cache stays exact), then wakes the submitters that wait.

Delivery is at least once and made idempotent by the dedup key: a client resends anything not
acknowledged, and a resent event is a duplicate, stored once. ``submit(wait=True)`` (what the HTTP
API does) acknowledges only once the events are in the store; ``wait=False`` once they are buffered.
A failed write keeps its batch at the head of the buffer and is retried with backoff. Events still
buffered when :meth:`Collector.close` gives up are counted in the message it logs, never silently.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from marrow.errors import BufferFullError, ImpressionError, InvalidEventError, StoreUnavailableError
from marrow.impressions.events import Impression, Refusal, check, decode_batch, filtered, to_impressions
from marrow.impressions.metrics import Metrics
from marrow.impressions.settings import ImpressionSettings
from marrow.impressions.store import DedupKey, ImpressionStore, StoredImpression

__all__ = ["Collector", "Receipt"]

log = logging.getLogger(__name__)
_MAX_BACKOFF_S = 5.0


class Receipt(msgspec.Struct):
    """The answer to a batch. ``accepted`` events were taken; when the submitter waited (``durable``),
    ``stored`` of them were new and ``duplicates`` were already stored. ``rejected`` events were
    invalid and ``filtered`` ones valid but not kept, each with the reason."""

    accepted: int
    durable: bool
    stored: int | None = None
    duplicates: int | None = None
    rejected: list[Refusal] = []
    filtered: list[Refusal] = []


class _Ticket:
    """A waiting submitter's share of the buffer."""

    __slots__ = ("done", "duplicates", "pending", "stored")

    def __init__(self, pending: int):
        self.pending = pending
        self.stored = 0
        self.duplicates = 0
        self.done = threading.Event()


class Collector:
    """Takes events into a bounded buffer and writes them to ``store`` from one flusher thread.
    ``on_stored`` receives the rows each write newly stored (the cache's write-through)."""

    def __init__(
        self,
        store: ImpressionStore,
        settings: ImpressionSettings,
        metrics: Metrics,
        on_stored: Callable[[list[StoredImpression]], None] = lambda rows: None,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.on_stored = on_stored
        self.clock = clock
        self.key = DedupKey(settings.dedup_key, settings.dedup_bucket_s)
        self._buffer: deque[tuple[StoredImpression, _Ticket | None]] = deque()
        self._cond = threading.Condition()
        self._writing = 0  # rows taken by the flusher and not yet written
        self._waiting = 0  # submitters waiting for their acknowledgement
        self._down: StoreUnavailableError | None = None
        self._rate = 1000.0  # rows per second the store took lately, for Retry-After
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="marrow-impressions-flusher", daemon=True)
        self._thread.start()
        metrics.gauges["buffer_events"] = lambda: len(self._buffer) + self._writing

    # --- taking events ---------------------------------------------------------------------------

    def submit(
        self,
        events: Iterable[Impression | Mapping[str, Any]],
        wait: bool = True,
        timeout: float | None = None,
    ) -> Receipt:
        """Take a batch of events given as :class:`Impression` objects or mappings of their fields."""
        return self._take(to_impressions(events), wait, timeout)

    def submit_json(self, body: bytes, wait: bool = True, timeout: float | None = None) -> Receipt:
        """Take a JSON batch ``{"events": [...]}``; :class:`InvalidEventError` when the body is not one."""
        try:
            decoded = decode_batch(body)
        except msgspec.DecodeError as e:
            raise InvalidEventError(
                f'the body is not a batch {{"events": [...]}} of impressions: {e}'
            ) from None
        return self._take(decoded, wait, timeout)

    def _take(self, decoded: Sequence[Impression | str], wait: bool, timeout: float | None) -> Receipt:
        if len(decoded) > self.settings.batch_max:
            raise InvalidEventError(
                f"a batch holds at most {self.settings.batch_max} events (setting batch_max), "
                f"not {len(decoded)}; split it"
            )
        now = int(self.clock() * 1000)
        rows: list[StoredImpression] = []
        rejected: list[Refusal] = []
        dropped: list[Refusal] = []
        for i, event in enumerate(decoded):
            reason = event if isinstance(event, str) else check(event, self.settings, now)
            if reason is not None:
                rejected.append(Refusal(i, reason))
                continue
            assert isinstance(event, Impression)
            why = filtered(event, self.settings)
            if why is not None:
                dropped.append(Refusal(i, why))
                continue
            rows.append(StoredImpression.of(event, self.key(event)))
        ticket = _Ticket(len(rows)) if wait and rows else None
        with self._cond:
            if self._closed:
                raise ImpressionError("the impression collector is closed; open a new service")
            if self._down is not None:
                self.metrics.events["refused"] += len(rows)
                raise StoreUnavailableError(
                    f"impressions are not being taken: {self._down}", self._down.retry_after
                )
            queued = len(self._buffer) + self._writing
            if queued + len(rows) > self.settings.buffer_events:
                self.metrics.events["refused"] += len(rows)
                retry = max(1, min(60, math.ceil(queued / self._rate)))
                raise BufferFullError(
                    f"the impression buffer is full ({queued} of {self.settings.buffer_events} events "
                    f"waiting for the store); nothing of this batch was taken; retry after {retry} s",
                    retry,
                )
            self._buffer.extend((row, ticket) for row in rows)
            if ticket is not None:
                self._waiting += 1
            self._cond.notify_all()
        self.metrics.events["rejected"] += len(rejected)
        self.metrics.events["filtered"] += len(dropped)
        receipt = Receipt(len(rows), durable=False, rejected=rejected, filtered=dropped)
        if ticket is None:
            receipt.durable = wait  # nothing to wait for is trivially durable
            if wait:
                receipt.stored = receipt.duplicates = 0
            return receipt
        limit = self.settings.ack_timeout_s if timeout is None else timeout
        if not ticket.done.wait(limit):
            down = self._down
            why = f"the store is failing: {down}" if down else f"the store did not take them within {limit} s"
            raise StoreUnavailableError(
                f"{len(rows)} events are buffered but not yet stored ({why}); they will be written when "
                "the store takes them, and resending them is safe (duplicates are stored once)",
                down.retry_after if down else 1,
            )
        receipt.durable = True
        receipt.stored, receipt.duplicates = ticket.stored, ticket.duplicates
        return receipt

    # --- the flusher ------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.05
        interval = self.settings.flush_interval_ms / 1000
        while True:
            with self._cond:
                while not self._buffer and not self._closed:
                    self._cond.wait()
                if not self._buffer:
                    return  # closed and drained
                # gather a fuller batch (fewer, larger transactions) unless someone waits for an
                # acknowledgement: then what arrived while the last batch was written is the batch
                deadline = time.monotonic() + interval
                while (
                    len(self._buffer) < self.settings.flush_events and not self._closed and not self._waiting
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                n = min(len(self._buffer), self.settings.flush_events)
                batch = [self._buffer.popleft() for _ in range(n)]
                self._writing = n
            started = time.perf_counter()
            try:
                new = self.store.append([row for row, _ in batch])
            except Exception as e:  # the batch goes back to the head of the buffer, in order
                if not self._failed(batch, e):
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            backoff = 0.05
            elapsed = time.perf_counter() - started
            self._rate = max(100.0, 0.8 * self._rate + 0.2 * (n / max(elapsed, 1e-6)))
            self._stored(batch, new)

    def _failed(self, batch: list[tuple[StoredImpression, _Ticket | None]], e: Exception) -> bool:
        """Put a batch the store refused back; whether to go on retrying (not once closed)."""
        self.metrics.store_errors += 1
        if not isinstance(e, StoreUnavailableError):
            log.exception("writing %d impressions failed; retrying", len(batch))
            e = StoreUnavailableError(f"writing to the impression store failed: {e}", 1)
        with self._cond:
            if self._closed:
                log.error("closed while the store refused %d impressions; they are lost", len(batch))
                self._writing = 0
                return False
            self._buffer.extendleft(reversed(batch))
            self._writing = 0
            self._down = e
            self._cond.notify_all()
        return True

    def _stored(self, batch: list[tuple[StoredImpression, _Ticket | None]], new: set[bytes]) -> None:
        fresh: list[StoredImpression] = []
        finished: list[_Ticket] = []
        for row, ticket in batch:
            is_new = row.key in new
            if is_new:
                new.discard(row.key)  # a second copy in the same batch is a duplicate
                fresh.append(row)
            if ticket is not None:
                if is_new:
                    ticket.stored += 1
                else:
                    ticket.duplicates += 1
                ticket.pending -= 1
                if ticket.pending == 0:
                    finished.append(ticket)
        self.metrics.flushes += 1
        self.metrics.events["stored"] += len(fresh)
        self.metrics.events["duplicate"] += len(batch) - len(fresh)
        try:
            self.on_stored(fresh)  # before acknowledging: a submitter then reads its own writes
        except Exception:  # the rows are stored; a cache that failed to follow ages out
            log.exception("updating the cache with %d new impressions failed", len(fresh))
        for ticket in finished:
            ticket.done.set()
        with self._cond:
            self._writing = 0
            self._waiting -= len(finished)
            self._down = None
            self._cond.notify_all()

    # --- state --------------------------------------------------------------------------------------

    @property
    def down(self) -> StoreUnavailableError | None:
        """Why the store is failing, or None when its last write succeeded."""
        return self._down

    def pending(self) -> int:
        """Events taken and not yet stored."""
        return len(self._buffer) + self._writing

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every event taken is stored (or ``timeout``); whether it was."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._buffer or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered (for up to ``timeout``), then stop the flusher."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            left = len(self._buffer) + self._writing
            if left:
                log.error("closing with %d impressions that the store did not take; they are lost", left)
                self._buffer.clear()
            self._cond.notify_all()
        self._thread.join(timeout)
