"""Events from the CMS to ingestion: the outbox, the event bus, the relay between them, and the ledger.

Every save, publish and unpublish writes a :class:`ContentEvent` to the **outbox** table in the same
transaction as the change. The **relay** hands outbox events to the **event bus** (in process by
default, a NATS JetStream subject at scale) and marks them relayed. Ingestion receives them, applies
them, records the outcome in the **ledger**, and only then acknowledges; an event that fails for a
reason that may pass (the writer is down) is redelivered after a delay, for as long as it takes.

Which render-ready namespaces (*channels*) an event concerns is data, :data:`CHANNELS`: a save goes
to ``preview`` (editors see drafts there), a publish to ``live`` and ``preview``, an unpublish to
``live``.

Invariants:

* **no change without its event** — the outbox row commits with the change (transactional outbox);
* **retried until ingested** — an event is *settled* once the ledger of each of its channels has
  applied it or a later event of the same document; :meth:`Relay.recover` hands every unsettled event
  to the bus again (on start, after a crash lost what an in-process queue held);
* **idempotent** — per channel and document the ledger keeps the last event applied (its outbox
  ``seq`` and revision); an event whose ``seq`` is not newer is a no-op, so a redelivery, a duplicate
  or an out-of-order older event changes nothing. (``seq`` tells apart a revision published, taken
  down and published again.)
"""

from __future__ import annotations

import collections
import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from marrow.cms.database import Database, Transaction
from marrow.errors import MarrowError

__all__ = [
    "CHANNELS",
    "ContentEvent",
    "Delivery",
    "EventBus",
    "InProcessBus",
    "Ledger",
    "LedgerEntry",
    "Outbox",
    "Relay",
]

log = logging.getLogger(__name__)

#: action → the channels (render-ready namespaces) its events are ingested into
CHANNELS: dict[str, tuple[str, ...]] = {
    "saved": ("preview",),
    "published": ("live", "preview"),
    "unpublished": ("live",),
}


class ContentEvent(msgspec.Struct, frozen=True):
    """A change to one document: ``action`` (saved, published, unpublished) of ``revision``."""

    seq: int  # position in the outbox: increasing, unique
    action: str
    kind: str
    id: int
    revision: int
    editor: str
    at: float  # seconds since the epoch


_EVENT_COLUMNS = "seq, action, kind, id, revision, editor, at"


class Outbox:
    """The outbox table: events written with their changes, waiting to be relayed."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def append(
        self, tx: Transaction, action: str, kind: str, id: int, revision: int, editor: str, at: float
    ) -> ContentEvent:
        """Write one event inside the change's transaction ``tx``."""
        ((seq,),) = tx.execute(
            "INSERT INTO outbox (at, action, kind, id, revision, editor) VALUES (?, ?, ?, ?, ?, ?) "
            "RETURNING seq",
            (at, action, kind, id, revision, editor),
        )
        return ContentEvent(seq, action, kind, id, revision, editor, at)

    def append_many(self, tx: Transaction, rows: Sequence[tuple[float, str, str, int, int, str]]) -> None:
        """Write many events ``(at, action, kind, id, revision, editor)`` inside ``tx``."""
        tx.executemany(
            "INSERT INTO outbox (at, action, kind, id, revision, editor) VALUES (?, ?, ?, ?, ?, ?)", rows
        )

    def pending(self, limit: int = 1000) -> list[ContentEvent]:
        """Events not relayed yet, oldest first."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                f"SELECT {_EVENT_COLUMNS} FROM outbox WHERE relayed_at IS NULL ORDER BY seq LIMIT ?", (limit,)
            )
        return [ContentEvent(*r) for r in rows]

    def mark_relayed(self, seqs: Sequence[int]) -> None:
        now = self.clock()
        with self.db.transaction() as tx:
            tx.executemany("UPDATE outbox SET relayed_at = ? WHERE seq = ?", [(now, s) for s in seqs])

    def unsettled(self, limit: int = 10_000) -> list[ContentEvent]:
        """Relayed or not, events that some channel's ledger has not applied yet, oldest first."""
        out: dict[int, ContentEvent] = {}
        with self.db.transaction() as tx:
            for action, channels in CHANNELS.items():
                for channel in channels:
                    rows = tx.execute(
                        f"SELECT {', '.join('o.' + c for c in _EVENT_COLUMNS.split(', '))} FROM outbox o "
                        "LEFT JOIN ingested i ON i.channel = ? AND i.kind = o.kind AND i.id = o.id "
                        "WHERE o.action = ? AND (i.seq IS NULL OR i.seq < o.seq) ORDER BY o.seq LIMIT ?",
                        (channel, action, limit),
                    )
                    out.update((r[0], ContentEvent(*r)) for r in rows)
        return [out[s] for s in sorted(out)][:limit]


@dataclass(frozen=True)
class LedgerEntry:
    """The last event a channel applied for one document, and its outcome."""

    seq: int
    revision: int
    action: str
    offset: int | None  # of the write that applied it; None when it failed or wrote nothing
    errors: list[dict[str, Any]] | None  # the ingestion errors, per field, when it failed
    at: float


class Ledger:
    """What ingestion has applied, per channel and document (the ``ingested`` table)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def entries(self, channel: str, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], LedgerEntry]:
        """The ledger's entries for these ``(kind, id)`` keys (absent keys are left out)."""
        out: dict[tuple[str, int], LedgerEntry] = {}
        by_kind: dict[str, list[int]] = collections.defaultdict(list)
        for kind, id in dict.fromkeys(keys):
            by_kind[kind].append(id)
        with self.db.transaction() as tx:
            for kind, ids in by_kind.items():
                for i in range(0, len(ids), 500):
                    chunk = ids[i : i + 500]
                    rows = tx.execute(
                        "SELECT id, seq, revision, action, write_offset, errors, at FROM ingested "
                        f"WHERE channel = ? AND kind = ? AND id IN ({', '.join('?' * len(chunk))})",
                        (channel, kind, *chunk),
                    )
                    for id, seq, revision, action, offset, errors, at in rows:
                        decoded = msgspec.json.decode(errors) if errors is not None else None
                        out[(kind, id)] = LedgerEntry(seq, revision, action, offset, decoded, at)
        return out

    def record(
        self,
        channel: str,
        entries: Sequence[tuple[ContentEvent, int | None, list[dict[str, Any]] | None]],
    ) -> None:
        """Record outcomes ``(event, offset, errors)``; an entry never replaces a newer one."""
        now = self.clock()
        rows = [
            (channel, e.kind, e.id, e.seq, e.revision, e.action, offset,
             None if errors is None else msgspec.json.encode(errors).decode(), now)
            for e, offset, errors in entries
        ]  # fmt: skip
        with self.db.transaction() as tx:
            tx.executemany(
                "INSERT INTO ingested (channel, kind, id, seq, revision, action, write_offset, errors, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel, kind, id) DO UPDATE SET "
                "seq = excluded.seq, revision = excluded.revision, action = excluded.action, "
                "write_offset = excluded.write_offset, errors = excluded.errors, at = excluded.at "
                "WHERE ingested.seq < excluded.seq",
                rows,
            )


# --- the event bus ----------------------------------------------------------------------------------


class Delivery(Protocol):
    """One event received from the bus; settle it with exactly one of ``ack`` or ``retry``."""

    event: ContentEvent
    attempt: int  # 1 on the first delivery

    def ack(self) -> None:
        """The event is ingested (or its failure is recorded): do not deliver it again."""
        ...

    def retry(self, delay: float) -> None:
        """Ingestion could not apply the event now: deliver it again after ``delay`` seconds."""
        ...


class EventBus(Protocol):
    """Carries content events from the relay to ingestion, at least once."""

    def publish(self, events: Sequence[ContentEvent]) -> None:
        """Hand events over; when this returns the bus has them. Raises EventBusError if it cannot."""
        ...

    def receive(self, max_events: int, timeout: float) -> list[Delivery]:
        """Up to ``max_events`` deliveries, waiting up to ``timeout`` seconds for the first."""
        ...


class _Delivery:
    def __init__(self, bus: InProcessBus, event: ContentEvent, attempt: int):
        self.bus, self.event, self.attempt = bus, event, attempt

    def ack(self) -> None:
        self.bus._settled(self)

    def retry(self, delay: float) -> None:
        self.bus._settled(self, retry_after=delay)


class InProcessBus:
    """The embedded default: a queue in this process. What it holds is lost with the process, and
    :meth:`Relay.recover` hands it over again from the outbox on the next start."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._ready: collections.deque[tuple[ContentEvent, int]] = collections.deque()
        self._delayed: list[tuple[float, int, ContentEvent, int]] = []  # (due, seq, event, attempt)
        self._unsettled = 0
        self._cond = threading.Condition()

    def publish(self, events: Sequence[ContentEvent]) -> None:
        with self._cond:
            self._ready.extend((e, 1) for e in events)
            self._unsettled += len(events)
            self._cond.notify_all()

    def receive(self, max_events: int, timeout: float) -> list[Delivery]:
        deadline = self.clock() + timeout
        with self._cond:
            while True:
                now = self.clock()
                while self._delayed and self._delayed[0][0] <= now:
                    _, _, event, attempt = heapq.heappop(self._delayed)
                    self._ready.append((event, attempt))
                if self._ready:
                    n = min(max_events, len(self._ready))
                    return [_Delivery(self, *self._ready.popleft()) for _ in range(n)]
                wait = deadline - now
                if self._delayed:
                    wait = min(wait, self._delayed[0][0] - now)
                if wait <= 0 and now >= deadline:
                    return []
                self._cond.wait(max(wait, 0.0))

    def _settled(self, delivery: _Delivery, retry_after: float | None = None) -> None:
        with self._cond:
            if retry_after is None:
                self._unsettled -= 1
            else:
                due = self.clock() + retry_after
                heapq.heappush(self._delayed, (due, delivery.event.seq, delivery.event, delivery.attempt + 1))
            self._cond.notify_all()

    def wait_settled(self, timeout: float) -> bool:
        """Wait until every published event is acknowledged; False on timeout (tests, the demo)."""
        deadline = self.clock() + timeout
        with self._cond:
            while self._unsettled:
                left = deadline - self.clock()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


class Relay:
    """Moves outbox events to the bus: at once when nudged (:meth:`notify`), else every ``interval``.

    ``start()`` first hands over every unsettled event again (:meth:`recover`), then relays in a
    background thread until ``close()``. A bus that refuses events leaves them in the outbox; the
    relay tries again on its next round.
    """

    def __init__(self, outbox: Outbox, bus: EventBus, interval: float = 0.5, batch: int = 1000):
        self.outbox, self.bus, self.interval, self.batch = outbox, bus, interval, batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Relay pending events until none are left; how many were relayed."""
        total = 0
        while events := self.outbox.pending(self.batch):
            self.bus.publish(events)
            self.outbox.mark_relayed([e.seq for e in events])
            total += len(events)
        return total

    def recover(self) -> int:
        """Hand every unsettled event to the bus again (relayed or not); how many."""
        events = self.outbox.unsettled()
        if events:
            self.bus.publish(events)
            self.outbox.mark_relayed([e.seq for e in events])
        return len(events)

    def notify(self) -> None:
        """A change was committed: relay now rather than at the next interval."""
        self._wake.set()

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="marrow-cms-relay", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except (MarrowError, OSError) as e:  # the bus or database is down: the outbox keeps them
                log.warning("relaying CMS events failed, retrying: %s", e)
            except Exception as e:  # unexpected: keep relaying rather than silently stop
                log.exception("relaying CMS events failed: %s", e)
            self._wake.wait(self.interval)
            self._wake.clear()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
