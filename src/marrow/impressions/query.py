"""Queries over one profile's impressions: per title, counts over 1, 7 and 30 days, last seen and the
recent sequence; per profile, the sequence of what was shown, newest first.

:class:`ProfileImpressions` is the read model: a profile's impressions of the last 30 days as one
sorted array of timestamps per title (8 bytes an impression). It is what the caches hold — the raw
impressions, not answers, so that one entry answers any set of titles at any later time — and what a
store read is turned into when there is no cache. Answers computed from it are memoised per title
until the first time one of its counts would change (an impression leaving a window) or an
impression of that title is added, so a page asked for again costs a dict lookup per title.

Windows are relative to ``now`` and include their start: an impression at ``now - 1 day`` counts in
the 1-day window. Impressions stamped slightly ahead of the clock (within the allowed skew) count.
"""

from __future__ import annotations

import heapq
import threading
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import msgspec

from marrow.impressions.events import DAY_MS
from marrow.impressions.store import Shown

__all__ = [
    "UNSEEN",
    "WINDOW_MS",
    "HistoryReader",
    "NoHistory",
    "ProfileImpressions",
    "TitleHistory",
]

#: The longest window; a profile's read model holds this much.
WINDOW_MS = 30 * DAY_MS
_WEEK_MS = 7 * DAY_MS
_NEVER = 2**63


class TitleHistory(msgspec.Struct, frozen=True, gc=False):
    """What a profile has been shown of one title in the last 30 days."""

    count_1d: int = 0
    count_7d: int = 0
    count_30d: int = 0
    last_seen: int | None = None  #: ms since the epoch of the latest impression
    recent: tuple[int, ...] = ()  #: timestamps of the latest impressions, newest first


#: The history of a title never shown (in 30 days): shared, immutable.
UNSEEN = TitleHistory()


@runtime_checkable
class HistoryReader(Protocol):
    """What personalisation reads: one call per page, for every title on it."""

    def histories(self, profile: int, titles: Sequence[int]) -> dict[int, TitleHistory]:
        """The history of each of ``titles`` for ``profile`` (:data:`UNSEEN` for those not shown)."""
        ...


class NoHistory:
    """A :class:`HistoryReader` with nothing in it, for page construction without the service."""

    def histories(self, profile: int, titles: Sequence[int]) -> dict[int, TitleHistory]:
        return dict.fromkeys(titles, UNSEEN)


class ProfileImpressions:
    """One profile's impressions at or after ``since`` (ms), as loaded at ``loaded`` (the clock's
    seconds, for the caches' age bound). Thread-safe: the flusher adds while readers ask.

    Answers are memoised for every title the profile has seen, all valid from the time they were
    computed (``_at``) until the first one would change (``_until``): within that span a query is a
    dict lookup per title. A title whose impressions changed is recomputed at the next query, and so
    is a title whose answer has expired."""

    __slots__ = (
        "_at",
        "_by_title",
        "_dirty",
        "_lock",
        "_memo",
        "_until",
        "_valid",
        "loaded",
        "profile",
        "recent",
        "since",
    )

    def __init__(
        self, profile: int, since: int, shown: Iterable[tuple[int, int]], loaded: float, recent: int = 5
    ):
        self.profile = profile
        self.since = since
        self.loaded = loaded
        self.recent = recent
        groups: dict[int, list[int]] = {}
        for ts, title in shown:
            if ts >= since:
                got = groups.get(title)
                if got is None:
                    groups[title] = [ts]
                else:
                    got.append(ts)
        self._by_title = {title: array("q", sorted(stamps)) for title, stamps in groups.items()}
        self._memo: dict[int, TitleHistory] = {}  # title → its answer, valid from _at
        self._until: dict[int, int] = {}  # title → when its answer stops being right
        self._dirty = set(self._by_title)  # titles to (re)compute before answering
        self._at = -_NEVER
        self._valid = -_NEVER  # every memoised answer holds for _at <= now < _valid
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(a) for a in self._by_title.values())

    def add(self, shown: Iterable[tuple[int, int]]) -> None:
        """Impressions newly stored for this profile (each once: the store has deduplicated them)."""
        with self._lock:
            for ts, title in shown:
                if ts < self.since:
                    continue
                got = self._by_title.get(title)
                if got is None:
                    self._by_title[title] = array("q", (ts,))
                elif ts >= got[-1]:
                    got.append(ts)
                else:
                    got.insert(bisect_left(got, ts), ts)
                self._dirty.add(title)
            self._valid = -_NEVER

    def histories(self, titles: Sequence[int], now: int) -> dict[int, TitleHistory]:
        """The history of each title at ``now`` (ms)."""
        with self._lock:
            if not self._at <= now < self._valid:
                self._refresh(now)
            memo = self._memo
            return {title: memo.get(title, UNSEEN) for title in titles}

    def _refresh(self, now: int) -> None:
        """Recompute what changed or expired, so that every answer holds at ``now``."""
        if now < self._at:  # the clock went back: nothing computed later can be trusted
            todo: Iterable[int] = list(self._by_title)
        else:
            todo = self._dirty | {t for t, until in self._until.items() if until <= now}
        memo, until = self._memo, self._until
        for title in todo:
            answer, valid_until = self._compute(self._by_title[title], now)
            if answer is UNSEEN:
                memo.pop(title, None)
                until.pop(title, None)
            else:
                memo[title] = answer
                until[title] = valid_until
        self._dirty = set()
        self._at = now
        self._valid = min(until.values(), default=_NEVER)

    def _compute(self, stamps: array[int], now: int) -> tuple[TitleHistory, int]:
        """The answer for one title's timestamps at ``now``, and until when it holds. (Written out
        window by window: this runs for every title of a profile loaded on a cache miss.)"""
        n = len(stamps)
        s30 = bisect_left(stamps, now - WINDOW_MS)
        if s30 == n:
            return UNSEEN, _NEVER
        s7 = bisect_left(stamps, now - _WEEK_MS, s30)
        s1 = bisect_left(stamps, now - DAY_MS, s7)
        # the answer holds until the oldest impression of a window leaves it
        until = stamps[s30] + WINDOW_MS
        if s7 < n:
            until = min(until, stamps[s7] + _WEEK_MS)
            if s1 < n:
                until = min(until, stamps[s1] + DAY_MS)
        k = self.recent
        recent = tuple(stamps[max(s30, n - k) :])[::-1] if k else ()
        return TitleHistory(n - s1, n - s7, n - s30, stamps[-1], recent), until

    def sequence(self, now: int, limit: int) -> list[Shown]:
        """The profile's latest ``limit`` impressions of the last 30 days at ``now``, newest first."""
        cut = now - WINDOW_MS
        with self._lock:
            every = [
                (ts, title)
                for title, stamps in self._by_title.items()
                for ts in stamps[bisect_left(stamps, cut) :]
            ]
        return [Shown(ts, title) for ts, title in heapq.nlargest(limit, every)]

    def shown(self) -> list[Shown]:
        """Every impression held, oldest first (what a shared cache stores)."""
        with self._lock:
            every = [Shown(ts, title) for title, stamps in self._by_title.items() for ts in stamps]
        every.sort()
        return every
