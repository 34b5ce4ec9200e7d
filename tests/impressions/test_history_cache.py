"""Caches: the node cache's bounds (entries, LRU; age), write-through, and refusing an entry that raced
a write; the shared cache's contract, in memory and on the real Redis (under its marker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import services
from marrow.impressions import InMemorySharedCache, NodeCache, ProfileImpressions, SharedCache, Shown
from marrow.impressions.store import StoredImpression
from marrow.impressions.testing import T0, Clock

NOW = int(T0 * 1000)


def entry(profile: int, clock: Clock, *shown: Shown) -> ProfileImpressions:
    return ProfileImpressions(profile, NOW - 1000, shown, loaded=clock())


def stored(profile: int, title: int, ts: int = NOW) -> StoredImpression:
    return StoredImpression(b"k", 0, profile, title, ts, "home", "row", 0, "web", 1.0, 2000, "none", False)


def test_the_least_recently_used_profile_is_evicted_first() -> None:
    clock = Clock()
    cache = NodeCache(entries=2, max_age_s=60, clock=clock)
    for p in (1, 2):
        assert cache.put(entry(p, clock), cache.epoch())
    cache.get(1)  # 2 is now the least recently used
    cache.put(entry(3, clock), cache.epoch())
    assert cache.get(2) == (None, False)
    assert cache.get(1)[0] is not None and cache.get(3)[0] is not None
    assert (len(cache), cache.evictions) == (2, 1)


def test_an_entry_past_its_age_is_returned_but_not_fresh() -> None:
    clock = Clock()
    cache = NodeCache(entries=10, max_age_s=60, clock=clock)
    e = entry(1, clock)
    cache.put(e, cache.epoch())
    assert cache.get(1) == (e, True)
    clock.advance(60)
    assert cache.get(1) == (e, False)  # kept: served, marked stale, when the store is down


def test_newly_stored_impressions_reach_cached_entries() -> None:
    clock = Clock()
    cache = NodeCache(entries=10, max_age_s=60, clock=clock)
    e = entry(1, clock, Shown(NOW - 10, 5))
    cache.put(e, cache.epoch())
    cache.update([stored(1, 5), stored(2, 5)])  # profile 2 is not cached: nothing to update
    assert e.histories([5], NOW)[5].count_1d == 2
    assert cache.get(2) == (None, False)


def test_an_entry_loaded_while_its_profile_was_written_is_not_kept() -> None:
    clock = Clock()
    cache = NodeCache(entries=10, max_age_s=60, clock=clock)
    mark = cache.epoch()  # a reader starts loading profile 1 from the store ...
    cache.update([stored(1, 5)])  # ... while an impression of profile 1 is stored
    assert not cache.put(entry(1, clock), mark)  # it may lack that impression
    assert cache.put(entry(1, clock), cache.epoch())  # a load that began after the write is kept
    cache.update([stored(2, 5)])  # a write to another profile does not matter
    assert cache.put(entry(1, clock), mark + 1)


def test_a_cache_of_no_entries_keeps_nothing() -> None:
    clock = Clock()
    cache = NodeCache(entries=0, max_age_s=60, clock=clock)
    assert cache.put(entry(1, clock), cache.epoch())  # current: a shared cache may keep it
    assert len(cache) == 0 and cache.get(1) == (None, False)


# --- the shared cache ---------------------------------------------------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=services.needs("redis"))])
def shared(request: pytest.FixtureRequest) -> Iterator[SharedCache]:
    if request.param == "memory":
        yield InMemorySharedCache()
        return
    from marrow.impressions.rediscache import RedisSharedCache

    cache = RedisSharedCache(services.REDIS_URL, max_age_s=30, prefix=f"test:{uuid.uuid4().hex[:8]}:")
    yield cache
    cache.forget([1, 2, 3])
    cache.close()


def test_the_shared_cache_keeps_replaces_and_appends(shared: SharedCache) -> None:
    assert shared.get(1) is None
    shared.put(1, NOW - 100, [Shown(NOW - 50, 7), Shown(NOW - 40, 8)])
    shared.put(2, NOW - 100, [])
    assert shared.get(1) == (NOW - 100, [Shown(NOW - 50, 7), Shown(NOW - 40, 8)])
    assert shared.get(2) == (NOW - 100, [])  # an empty history is cached too
    shared.append({1: [Shown(NOW, 9)], 3: [Shown(NOW, 9)]})
    assert shared.get(1) == (NOW - 100, [Shown(NOW - 50, 7), Shown(NOW - 40, 8), Shown(NOW, 9)])
    assert shared.get(3) is None  # not cached: an append does not create a partial entry
    shared.put(1, NOW, [Shown(NOW, 1)])
    assert shared.get(1) == (NOW, [Shown(NOW, 1)])


@pytest.mark.parametrize("_", [pytest.param(None, marks=services.needs("redis"))])
def test_redis_entries_expire_with_their_age(_: None) -> None:
    from marrow.impressions.rediscache import RedisSharedCache

    cache = RedisSharedCache(services.REDIS_URL, max_age_s=30, prefix=f"test:{uuid.uuid4().hex[:8]}:")
    try:
        cache.put(1, NOW, [Shown(NOW, 1)])
        ttl = cache.client.pttl(cache._key(1))
        assert 0 < ttl <= 30_000
    finally:
        cache.forget([1])
        cache.close()


def test_a_redis_that_cannot_be_reached_is_a_miss_not_an_error() -> None:
    from marrow.impressions.rediscache import RedisSharedCache

    cache = RedisSharedCache("redis://127.0.0.1:1/0", max_age_s=30, timeout_s=0.2)
    assert cache.get(1) is None
    cache.put(1, NOW, [Shown(NOW, 1)])
    cache.append({1: [Shown(NOW, 2)]})
    assert cache.errors == 3
    assert cache.last_error is not None and "ConnectionError" in cache.last_error
