"""Where impressions are kept: the :class:`ImpressionStore` protocol, the row it stores, and the
in-memory store. SQLite (:mod:`.sqlite`, the embedded default) and PostgreSQL (:mod:`.postgres`) live
beside it; a Cassandra/ScyllaDB store would implement the same three methods, with
``(profile, day)`` as its partition key.

Invariants every store keeps:

* **idempotent append** — a row whose key is already stored is not stored again, and ``append``
  returns only the keys it newly stored; appending the same rows twice changes nothing.
* **time buckets** — every row carries its ``day`` (days since the epoch, from its timestamp);
  ``expire(before_day)`` drops whole days, so retention costs one range delete (or a dropped
  partition), not a scan.
* **all or nothing** — an append that fails stores none of its rows, and raises
  :class:`~marrow.errors.StoreUnavailableError` when the store cannot be reached.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection, Sequence
from operator import attrgetter
from typing import Any, NamedTuple, Protocol, runtime_checkable

import msgspec

from marrow.impressions.events import DAY_MS, Impression

__all__ = [
    "DedupKey",
    "ImpressionStore",
    "InMemoryImpressionStore",
    "Shown",
    "StoredImpression",
]


class StoredImpression(NamedTuple):
    """One stored impression: its dedup key, its day bucket and the event's fields, flat (as they
    are written to a table)."""

    key: bytes
    day: int
    profile: int
    title: int
    timestamp: int
    page: str
    section: str
    position: int
    device: str
    visible_share: float
    visible_ms: int
    scroll: str
    cached_page: bool

    @classmethod
    def of(cls, event: Impression, key: bytes) -> StoredImpression:
        return cls(
            key,
            event.timestamp // DAY_MS,
            event.profile,
            event.title,
            event.timestamp,
            event.page,
            event.section,
            event.position,
            event.device,
            event.visible_share,
            event.visible_ms,
            event.scroll,
            event.cached_page,
        )


class Shown(NamedTuple):
    """What a read returns per impression: when, and which title."""

    timestamp: int
    title: int


@runtime_checkable
class ImpressionStore(Protocol):
    """Append impressions, read a profile's, expire old days. Safe to call from several threads."""

    def append(self, rows: Sequence[StoredImpression]) -> set[bytes]:
        """Store ``rows`` whose key is not stored yet, atomically; the keys newly stored."""
        ...

    def read(self, profile: int, since: int, titles: Collection[int] | None = None) -> list[tuple[int, int]]:
        """``profile``'s impressions at or after ``since`` (ms), of ``titles`` (all when None), as
        (timestamp, title) pairs ordered by both (oldest first)."""
        ...

    def expire(self, before_day: int) -> int:
        """Drop every impression of a day before ``before_day``; how many were dropped."""
        ...


class DedupKey:
    """The dedup key of an event under the configured fields: a 16-byte BLAKE2b digest of their values
    (``timestamp_bucket`` is the timestamp rounded down to ``bucket_s``). Stable across processes and
    machines, unlike ``hash()``, so every node and every retry computes the same key."""

    def __init__(self, fields: Sequence[str], bucket_s: int):
        self.fields = tuple(fields)
        bucket_ms = bucket_s * 1000
        plain = attrgetter(*[f if f != "timestamp_bucket" else "timestamp" for f in self.fields])
        bucketed = [i for i, f in enumerate(self.fields) if f == "timestamp_bucket"]
        single = len(self.fields) == 1

        def values(event: Impression) -> list[Any]:
            got = plain(event)
            out: list[Any] = [got] if single else list(got)
            for i in bucketed:
                out[i] = out[i] // bucket_ms
            return out

        self._values = values
        self._encode = msgspec.msgpack.Encoder().encode

    def __call__(self, event: Impression) -> bytes:
        return hashlib.blake2b(self._encode(self._values(event)), digest_size=16).digest()


class InMemoryImpressionStore:
    """An :class:`ImpressionStore` in a dict, for tests and single-process demos. Lost with the process."""

    def __init__(self) -> None:
        self._rows: dict[bytes, StoredImpression] = {}
        self._by_profile: dict[int, list[StoredImpression]] = {}
        self._lock = threading.Lock()
        self.reads = 0  #: read calls served, so tests can see what a cache saved

    def append(self, rows: Sequence[StoredImpression]) -> set[bytes]:
        new: set[bytes] = set()
        with self._lock:
            for row in rows:
                if row.key in self._rows:
                    continue
                self._rows[row.key] = row
                self._by_profile.setdefault(row.profile, []).append(row)
                new.add(row.key)
        return new

    def read(self, profile: int, since: int, titles: Collection[int] | None = None) -> list[tuple[int, int]]:
        with self._lock:
            self.reads += 1
            rows = list(self._by_profile.get(profile, ()))
        wanted = None if titles is None else set(titles)
        found: list[tuple[int, int]] = [
            Shown(r.timestamp, r.title)
            for r in rows
            if r.timestamp >= since and (wanted is None or r.title in wanted)
        ]
        found.sort()
        return found

    def expire(self, before_day: int) -> int:
        with self._lock:
            old = [k for k, r in self._rows.items() if r.day < before_day]
            for k in old:
                del self._rows[k]
            for profile, rows in list(self._by_profile.items()):
                kept = [r for r in rows if r.day >= before_day]
                if kept:
                    self._by_profile[profile] = kept
                else:
                    del self._by_profile[profile]
        return len(old)

    def __len__(self) -> int:
        return len(self._rows)
