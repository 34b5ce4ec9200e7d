"""The caches in front of the impression store: the node cache in each process, and the optional
shared cache between processes (the EVCache role; Redis in :mod:`.rediscache`).

Both hold a profile's *raw* impressions of the last 30 days (a
:class:`~marrow.impressions.query.ProfileImpressions`), not answers: one entry answers any set of
titles, and a newly stored impression is added to it in place (write-through) instead of throwing it
away. Only the node that stored an impression updates its own node cache, so another node sees it when
its entry ages out: ``cache_max_age_s`` bounds that staleness.

Eviction in the node cache is LRU within an age bound. Why LRU: a member's reads come in a burst
while they browse (every page, every fragment) and then stop, so recency is what predicts the next
read; an ``OrderedDict`` does it in O(1) with C-speed moves, where a frequency-based policy would cost
per-read bookkeeping in Python on the hot path. An entry past its age is not answered from while the
store is up (it is reloaded), but it is kept until evicted: when the store is down, it is served,
marked stale.

A read that missed loads the profile from the store; if an impression of that profile was stored
while it was loading, the entry might lack it, so it is answered from but not kept (``put`` refuses
it, see :meth:`NodeCache.put`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from marrow.impressions.query import ProfileImpressions
from marrow.impressions.store import Shown, StoredImpression

__all__ = ["InMemorySharedCache", "NodeCache", "SharedCache", "by_profile"]

_TOUCHED_LIMIT = 100_000


def by_profile(rows: Iterable[StoredImpression]) -> dict[int, list[tuple[int, int]]]:
    """(timestamp, title) pairs of ``rows``, by profile."""
    out: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    for r in rows:
        out[r.profile].append(Shown(r.timestamp, r.title))
    return out


class NodeCache:
    """At most ``entries`` profiles, LRU; an entry older than ``max_age_s`` (by ``clock``) is stale."""

    def __init__(self, entries: int, max_age_s: float, clock: Callable[[], float]):
        self.entries = entries
        self.max_age_s = max_age_s
        self.clock = clock
        self._data: OrderedDict[int, ProfileImpressions] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0  # counts updates; a load remembers it to know whether it raced one
        self._touched: dict[int, int] = {}  # profile → epoch of its last update
        self._floor = 0  # loads begun before this epoch are treated as raced (after _touched was cleared)
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._data)

    def epoch(self) -> int:
        """The mark a load takes before it reads the store, to give back to :meth:`put`."""
        return self._epoch

    def get(self, profile: int) -> tuple[ProfileImpressions | None, bool]:
        """(entry, fresh): the cached entry (None if there is none) and whether it is within its age."""
        with self._lock:
            entry = self._data.get(profile)
            if entry is None:
                return None, False
            self._data.move_to_end(profile)
        return entry, self.clock() - entry.loaded < self.max_age_s

    def put(self, entry: ProfileImpressions, epoch: int) -> bool:
        """Keep ``entry`` (loaded after :meth:`epoch` returned ``epoch``), unless an impression of its
        profile was stored since: then it may lack it. Whether it is current (and so may be kept in a
        shared cache too); a cache of no entries keeps nothing but still answers."""
        with self._lock:
            if epoch < self._floor or self._touched.get(entry.profile, -1) > epoch:
                return False
            if self.entries == 0:
                return True
            self._data[entry.profile] = entry
            self._data.move_to_end(entry.profile)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)
                self.evictions += 1
        return True

    def update(self, rows: Iterable[StoredImpression]) -> None:
        """Add newly stored impressions to the entries of their profiles (write-through)."""
        grouped = by_profile(rows)
        if not grouped:
            return
        with self._lock:
            self._epoch += 1
            if len(self._touched) > _TOUCHED_LIMIT:
                self._touched.clear()
                self._floor = self._epoch
            for profile in grouped:
                self._touched[profile] = self._epoch
            entries = [(self._data.get(p), shown) for p, shown in grouped.items()]
        for entry, shown in entries:
            if entry is not None:
                entry.add(shown)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class SharedCache(Protocol):
    """A cache shared by the nodes: a profile's raw impressions, with their ``since`` (ms).
    Failures are not errors: a shared cache that cannot answer is a miss."""

    def get(self, profile: int) -> tuple[int, Sequence[tuple[int, int]]] | None:
        """(since, impressions oldest first) of ``profile``, or None."""
        ...

    def put(self, profile: int, since: int, shown: Sequence[tuple[int, int]]) -> None:
        """Keep ``profile``'s impressions since ``since``, replacing what was kept."""
        ...

    def append(self, shown: Mapping[int, Sequence[tuple[int, int]]]) -> None:
        """Add newly stored impressions to the profiles that are kept; others stay absent."""
        ...


class InMemorySharedCache:
    """A :class:`SharedCache` in a dict (no age bound), for tests and for several services in one
    process."""

    def __init__(self) -> None:
        self._data: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        self._lock = threading.Lock()

    def get(self, profile: int) -> tuple[int, Sequence[tuple[int, int]]] | None:
        with self._lock:
            got = self._data.get(profile)
            return None if got is None else (got[0], list(got[1]))

    def put(self, profile: int, since: int, shown: Sequence[tuple[int, int]]) -> None:
        with self._lock:
            self._data[profile] = (since, list(shown))

    def append(self, shown: Mapping[int, Sequence[tuple[int, int]]]) -> None:
        with self._lock:
            for profile, new in shown.items():
                if profile in self._data:
                    self._data[profile][1].extend(new)
