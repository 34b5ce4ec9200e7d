"""The near-cache: loads on a miss, serves from memory, sees a change only when the key's timer fires."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from legacy.cache import NearCache


class Table:
    def __init__(self, values: dict[str, bytes]):
        self.values = values
        self.reads: list[list[str]] = []

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        self.reads.append(list(keys))
        return {k: self.values[k] for k in keys if k in self.values}


@pytest.fixture
def table() -> Table:
    return Table({"a": b"1", "b": b"2"})


@pytest.fixture
def slow_cache(table: Table) -> Iterator[NearCache]:
    cache = NearCache(table.get_many, ttl=60.0, jitter=0.1, seed=1)
    yield cache
    cache.close()


def test_a_miss_reads_the_table_once_then_the_key_is_served_from_memory(
    slow_cache: NearCache, table: Table
) -> None:
    assert slow_cache.get_many(["a", "b", "a"]) == ([b"1", b"2", b"1"], 2)
    assert slow_cache.get_many(["b", "a"]) == ([b"2", b"1"], 0)
    assert table.reads == [["a", "b"]]
    assert (slow_cache.stats.misses, slow_cache.stats.miss_queries, slow_cache.stats.hits) == (2, 1, 3)


def test_a_missing_key_is_cached_as_missing(slow_cache: NearCache, table: Table) -> None:
    assert slow_cache.get_many(["nope"]) == ([None], 1)
    table.values["nope"] = b"here now"
    assert slow_cache.get_many(["nope"]) == ([None], 0)  # until its timer fires
    assert slow_cache.holds(["nope"]) and not slow_cache.holds(["nope", "a"])


def test_a_change_in_the_table_is_not_seen_before_the_keys_timer(slow_cache: NearCache, table: Table) -> None:
    slow_cache.get_many(["a"])
    table.values["a"] = b"changed"
    assert slow_cache.get_many(["a"])[0] == [b"1"]
    assert slow_cache.stats.refreshes == 0


def test_each_key_is_refreshed_on_its_own_timer(table: Table) -> None:
    cache = NearCache(table.get_many, ttl=0.2, jitter=0.0)
    try:
        cache.get_many(["a"])
        table.values["a"] = b"changed"
        deadline = time.monotonic() + 30
        while cache.get_many(["a"])[0] != [b"changed"]:
            assert time.monotonic() < deadline, "the refresher never reloaded the key"
            time.sleep(0.01)
        assert cache.stats.refreshes >= 1 and cache.stats.misses == 1
        assert all(read == ["a"] for read in table.reads)  # a refresh reads only the keys that are due
    finally:
        cache.close()


def test_timers_are_jittered_so_keys_loaded_together_drift_apart(table: Table) -> None:
    cache = NearCache(table.get_many, ttl=100.0, jitter=0.1, seed=3)
    try:
        due = [cache._next_due(0.0) for _ in range(200)]
    finally:
        cache.close()
    assert all(90.0 <= d <= 110.0 for d in due)
    assert max(due) - min(due) > 10.0


@pytest.mark.parametrize(("ttl", "jitter"), [(0.0, 0.1), (-1.0, 0.1), (30.0, 1.0), (30.0, -0.1)])
def test_settings_are_checked(table: Table, ttl: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        NearCache(table.get_many, ttl=ttl, jitter=jitter)
