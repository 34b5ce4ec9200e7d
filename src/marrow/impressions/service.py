"""The impression history service: ingest, store, caches, rollout and metrics, composed.

:class:`ImpressionHistory` is what an application holds (one per process). Reads go

    node cache ──miss──> shared cache (if any) ──miss──> store

for a profile dialled up to the cache, and straight to the store otherwise; a shadowed profile is
also read from the store and the two answers compared (see :mod:`.rollout`). Every answer says where
it came from. When the store is down, a read is served from the cache even past its age — and says
``stale`` — or, when the profile is cached nowhere, raises
:class:`~marrow.errors.StoreUnavailableError`; ingest refuses new batches (see :mod:`.ingest`).

Lifecycle: :meth:`ImpressionHistory.open` builds everything from settings and starts the flusher
thread; :meth:`close` writes what is buffered and closes the store and shared cache it opened (a store
given to the constructor belongs to the caller, who closes it). Old days are expired at most
once an hour, by the flusher after a write (one thread writes, so expiry never races a write).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from marrow.errors import StoreUnavailableError
from marrow.impressions.cache import NodeCache, SharedCache, by_profile
from marrow.impressions.events import DAY_MS, Impression
from marrow.impressions.ingest import Collector, Receipt
from marrow.impressions.metrics import Metrics
from marrow.impressions.query import WINDOW_MS, ProfileImpressions, TitleHistory
from marrow.impressions.rollout import Rollout
from marrow.impressions.settings import ImpressionSettings
from marrow.impressions.store import ImpressionStore, InMemoryImpressionStore, Shown, StoredImpression

__all__ = ["HistoryAnswer", "ImpressionHistory", "SequenceAnswer", "open_store"]

_EXPIRE_EVERY_S = 3600.0
log = logging.getLogger(__name__)


class HistoryAnswer(msgspec.Struct):
    """Histories of the titles asked for, and where they came from: ``node`` or ``shared`` (a cache),
    or ``store``. ``stale`` says the store could not be read and the cache's entry was past its age;
    ``note`` says why."""

    profile: int
    histories: dict[int, TitleHistory]
    source: str
    stale: bool = False
    note: str | None = None


class SequenceAnswer(msgspec.Struct):
    """A profile's latest impressions, newest first, and where they came from (as in HistoryAnswer)."""

    profile: int
    shown: list[Shown]
    source: str
    stale: bool = False
    note: str | None = None


def open_store(settings: ImpressionSettings) -> ImpressionStore:
    """The store that ``settings.store`` names."""
    if settings.store == "memory":
        return InMemoryImpressionStore()
    if settings.store.startswith("sqlite:"):
        from marrow.impressions.sqlite import SQLiteImpressionStore

        return SQLiteImpressionStore(settings.store.removeprefix("sqlite:"))
    from marrow.impressions.postgres import PostgresImpressionStore

    return PostgresImpressionStore(settings.store)


class ImpressionHistory:
    """One process's impression history service (a :class:`~marrow.impressions.query.HistoryReader`)."""

    def __init__(
        self,
        settings: ImpressionSettings,
        store: ImpressionStore,
        shared: SharedCache | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings
        self.store = store
        self.shared = shared
        self.clock = clock
        self.metrics = Metrics()
        self.rollout = Rollout(settings.dial_up, settings.shadow_share, settings.shadow_examples)
        self.cache = NodeCache(settings.cache_entries, settings.cache_max_age_s, clock)
        self.collector = Collector(store, settings, self.metrics, self._stored, clock)
        self.metrics.gauges["cache_entries"] = lambda: len(self.cache)
        self._expired_at = clock()
        self._owned: list[object] = []  # what open() opened, for close() to close

    @classmethod
    def open(cls, settings: ImpressionSettings, clock: Callable[[], float] = time.time) -> ImpressionHistory:
        """The service as ``settings`` describe it: its store, and the Redis shared cache if configured."""
        shared = None
        if settings.redis_url is not None:
            from marrow.impressions.rediscache import RedisSharedCache

            shared = RedisSharedCache(settings.redis_url, settings.shared_cache_max_age_s)
        service = cls(settings, open_store(settings), shared, clock)
        service._owned = [service.store, shared]
        return service

    # --- ingest -----------------------------------------------------------------------------------

    def submit(
        self,
        events: Iterable[Impression | Mapping[str, Any]],
        wait: bool = True,
        timeout: float | None = None,
    ) -> Receipt:
        """Take a batch of events (see :class:`~marrow.impressions.ingest.Collector`)."""
        return self.collector.submit(events, wait, timeout)

    def submit_json(self, body: bytes, wait: bool = True, timeout: float | None = None) -> Receipt:
        """Take a JSON batch ``{"events": [...]}``."""
        return self.collector.submit_json(body, wait, timeout)

    def _stored(self, rows: list[StoredImpression]) -> None:
        """Write-through: newly stored impressions reach the caches that hold their profiles."""
        self.cache.update(rows)
        if self.shared is not None:
            self.shared.append(by_profile(rows))
        if self.clock() - self._expired_at >= _EXPIRE_EVERY_S:
            try:
                self.expire()
            except StoreUnavailableError as e:  # the rows are stored; expiry is tried again in an hour
                log.warning("expiring old impressions failed: %s", e)

    def expire(self) -> int:
        """Drop the days older than the retention; how many impressions were dropped."""
        self._expired_at = self.clock()
        now = int(self._expired_at * 1000)
        return self.store.expire((now - self.settings.retention_days * DAY_MS) // DAY_MS)

    # --- reads ------------------------------------------------------------------------------------

    def histories(self, profile: int, titles: Sequence[int]) -> dict[int, TitleHistory]:
        """The :class:`~marrow.impressions.query.HistoryReader` call: histories of ``titles``."""
        return self.read(profile, titles).histories

    def read(self, profile: int, titles: Sequence[int]) -> HistoryAnswer:
        """Histories of ``titles`` for ``profile``, saying where they came from."""
        now = int(self.clock() * 1000)
        entry, source, stale, note = self._entry(profile, now, titles)
        answer = entry.histories(titles, now)
        if source != "store" and self.rollout.shadowed(profile):
            try:
                truth = self._load(profile, now, "shadow", titles).histories(titles, now)
            except StoreUnavailableError:
                pass  # nothing to compare with; the cached answer stands
            else:
                self.rollout.compare(profile, now, source, answer, truth)
                if not self.rollout.cached(profile):  # shadow only: serve the store's answer
                    answer, source = truth, "store"
        self.metrics.answers["stale" if stale else source] += 1
        return HistoryAnswer(profile, answer, source, stale, note)

    def sequence(self, profile: int, limit: int = 20) -> SequenceAnswer:
        """``profile``'s latest ``limit`` impressions of the last 30 days, newest first."""
        now = int(self.clock() * 1000)
        entry, source, stale, note = self._entry(profile, now)
        self.metrics.answers["stale" if stale else source] += 1
        return SequenceAnswer(profile, entry.sequence(now, limit), source, stale, note)

    def _entry(
        self, profile: int, now: int, titles: Sequence[int] | None = None
    ) -> tuple[ProfileImpressions, str, bool, str | None]:
        """(entry, source, stale, note) for a read of ``profile`` (of ``titles``, or all) at ``now``."""
        if not (self.rollout.cached(profile) or self.rollout.shadowed(profile)):
            try:
                return self._load(profile, now, "uncached", titles), "store", False, None
            except StoreUnavailableError as e:
                return self._stale(profile, e, self.cache.get(profile)[0])
        entry, fresh = self.cache.get(profile)
        if entry is not None and fresh:
            self.metrics.hits["node"] += 1
            return entry, "node", False, None
        self.metrics.misses["node"] += 1
        epoch = self.cache.epoch()
        if self.shared is not None:
            got = self.shared.get(profile)
            if got is not None:
                self.metrics.hits["shared"] += 1
                loaded = ProfileImpressions(profile, got[0], got[1], self.clock(), self.settings.recent)
                self.cache.put(loaded, epoch)
                return loaded, "shared", False, None
            self.metrics.misses["shared"] += 1
        try:
            loaded = self._load(profile, now, "miss")
        except StoreUnavailableError as e:
            return self._stale(profile, e, entry)
        if self.cache.put(loaded, epoch) and self.shared is not None:
            self.shared.put(profile, loaded.since, loaded.shown())
        return loaded, "store", False, None

    def _stale(
        self, profile: int, error: StoreUnavailableError, entry: ProfileImpressions | None
    ) -> tuple[ProfileImpressions, str, bool, str | None]:
        if entry is None:
            raise StoreUnavailableError(
                f"profile {profile}'s history is not cached and the store cannot be read: {error}",
                error.retry_after,
            ) from error
        age = self.clock() - entry.loaded
        note = f"served from the cache ({age:.0f} s old): the store cannot be read: {error}"
        return entry, "node", True, note

    def _load(
        self, profile: int, now: int, reason: str, titles: Sequence[int] | None = None
    ) -> ProfileImpressions:
        """``profile``'s impressions from the store (of ``titles`` only, for an entry not cached)."""
        since = now - WINDOW_MS
        shown = self.store.read(profile, since, titles)
        self.metrics.store_reads[reason] += 1
        return ProfileImpressions(profile, since, shown, self.clock(), self.settings.recent)

    # --- state ------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the service is doing: metrics, rollout and shadow results, the store's state."""
        down = self.collector.down
        shared: dict[str, Any] | None = None
        if self.shared is not None:
            shared = {
                "kind": type(self.shared).__name__,
                "errors": getattr(self.shared, "errors", 0),
                "last_error": getattr(self.shared, "last_error", None),
            }
        return {
            "store": {
                "kind": type(self.store).__name__,
                "available": down is None,
                "error": str(down) if down else None,
            },
            "shared_cache": shared,
            "metrics": self.metrics.as_dict(),
            "rollout": self.rollout.as_dict(),
            "settings": self.settings.as_dict(),
        }

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered (for up to ``timeout``), then close what :meth:`open` opened."""
        self.collector.close(timeout)
        for part in self._owned:
            close = getattr(part, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> ImpressionHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
