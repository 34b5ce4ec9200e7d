"""The page data service's near-cache: every key refreshed on its own timer (DESIGN.md §5).

A key is loaded from the table on its first read (a *miss*, answered synchronously) and from then on
served from memory; its refresh is due ``ttl × (1 ± jitter)`` seconds after it was loaded, drawn
anew each time, so keys that were loaded together drift apart. One refresher thread reloads the keys
that are due, in one query per wake-up, and schedules each again. Nothing tells the cache that a
value changed: a write is seen when the key's own timer next fires — which is why an editor's preview
waited, and why a page of many keys shows some changes before others.

Missing keys are cached as missing (None) and refreshed like any other. The cache is unbounded: the
read dataset fits in memory, as it did for the service this models.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Loader = Callable[[list[str]], dict[str, bytes]]


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0  # keys loaded on a read
    miss_queries: int = 0  # table reads made while a request waited
    refreshes: int = 0  # keys reloaded on their timer
    refresh_queries: int = 0


class NearCache:
    """Keys → values, each refreshed on its own timer; see the module docstring. Thread-safe.

    ``load`` reads keys from the table (the one for misses and the one for refreshes may differ, so a
    refresh never holds up a request)."""

    def __init__(
        self,
        load: Loader,
        ttl: float = 30.0,
        jitter: float = 0.1,
        refresh_load: Loader | None = None,
        max_batch: int = 2000,
        seed: int | None = None,
    ):
        if ttl <= 0 or not 0 <= jitter < 1:
            raise ValueError(f"ttl must be positive and jitter in [0, 1), not {ttl} and {jitter}")
        self.load, self.refresh_load = load, refresh_load or load
        self.ttl, self.jitter, self.max_batch = ttl, jitter, max_batch
        self.stats = Stats()
        self._values: dict[str, bytes | None] = {}
        self._due: list[tuple[float, str]] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread = threading.Thread(target=self._refresh_loop, name="near-cache-refresh", daemon=True)
        self._thread.start()

    def _next_due(self, now: float) -> float:
        return now + self.ttl * (1 + self._rng.uniform(-self.jitter, self.jitter))

    def get_many(self, keys: list[str]) -> tuple[list[bytes | None], int]:
        """The values of ``keys`` (None where the table has none), and how many were misses."""
        values = self._values
        missing = [k for k in keys if k not in values]
        if missing:
            missing = list(dict.fromkeys(missing))
            loaded = self.load(missing)
            now = time.monotonic()
            with self._lock:
                for k in missing:
                    if k not in values:
                        values[k] = loaded.get(k)
                        heapq.heappush(self._due, (self._next_due(now), k))
                self.stats.misses += len(missing)
                self.stats.miss_queries += 1
                self._wake.notify()
        self.stats.hits += len(keys) - len(missing)
        return [values[k] for k in keys], len(missing)

    def holds(self, keys: list[str]) -> bool:
        """Whether every key of ``keys`` is in memory (a read of them makes no table read)."""
        values = self._values
        return all(k in values for k in keys)

    def __len__(self) -> int:
        return len(self._values)

    def _refresh_loop(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._wake.wait(timeout)
                if self._closed:
                    return
                now = time.monotonic()
                due: list[str] = []
                while self._due and self._due[0][0] <= now and len(due) < self.max_batch:
                    due.append(heapq.heappop(self._due)[1])
            try:
                loaded = self.refresh_load(due)
            except Exception:  # the table is away: keep serving what we have, try again soon
                loaded = None
            with self._lock:
                now = time.monotonic()
                for k in due:
                    if loaded is not None:
                        self._values[k] = loaded.get(k)
                        heapq.heappush(self._due, (self._next_due(now), k))
                    else:
                        heapq.heappush(self._due, (now + 1.0, k))
                if loaded is not None:
                    self.stats.refreshes += len(due)
                    self.stats.refresh_queries += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(5)
