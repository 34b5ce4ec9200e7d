"""The service composed: where answers come from, write-through, shadow and dial-up, the store going
away (reads serve from the cache and say so), two nodes sharing a cache, expiry and metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import services
from marrow.errors import StoreUnavailableError
from marrow.impressions import (
    UNSEEN,
    HistoryReader,
    ImpressionHistory,
    ImpressionSettings,
    InMemoryImpressionStore,
    InMemorySharedCache,
    Shown,
    StoredImpression,
    TitleHistory,
)
from marrow.impressions.events import DAY_MS
from marrow.impressions.rollout import Rollout
from marrow.impressions.testing import T0, Clock, Outage, impression

NOW = int(T0 * 1000)
SETTINGS = ImpressionSettings(store="memory", flush_interval_ms=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outage() -> Outage:
    return Outage(InMemoryImpressionStore())


@pytest.fixture
def service(outage: Outage, clock: Clock) -> Iterator[ImpressionHistory]:
    s = ImpressionHistory(SETTINGS, outage, clock=clock)
    yield s
    outage.down = False
    s.close(timeout=1)


def seen(n: int, at: int = NOW) -> TitleHistory:
    return TitleHistory(n, n, n, at, (at,) * min(n, 5))


def test_a_first_read_comes_from_the_store_and_the_next_from_the_node(service: ImpressionHistory) -> None:
    service.submit([impression(title=1), impression(title=2)])
    first = service.read(1, [1, 2, 3])
    assert (first.source, first.stale) == ("store", False)
    assert first.histories == {1: seen(1), 2: seen(1), 3: UNSEEN}
    again = service.read(1, [1, 3])
    assert again.source == "node"
    assert service.metrics.store_reads == {"miss": 1, "uncached": 0, "shadow": 0}
    assert service.metrics.hits["node"] == 1


def test_the_service_is_a_history_reader(service: ImpressionHistory) -> None:
    assert isinstance(service, HistoryReader)
    service.submit([impression(title=1)])
    assert service.histories(1, [1, 2]) == {1: seen(1), 2: UNSEEN}


def test_a_stored_impression_is_visible_at_once_through_the_cache(service: ImpressionHistory) -> None:
    service.read(1, [1])  # cached: empty history
    service.submit([impression(title=1)])
    answer = service.read(1, [1])
    assert (answer.source, answer.histories[1]) == ("node", seen(1))


def test_the_sequence_is_served_like_histories(service: ImpressionHistory, clock: Clock) -> None:
    service.submit([impression(title=1), impression(title=2, timestamp=NOW + 1)])
    answer = service.sequence(1, limit=5)
    assert (answer.source, answer.shown) == ("store", [Shown(NOW + 1, 2), Shown(NOW, 1)])


def test_an_entry_past_its_age_is_reloaded(service: ImpressionHistory, clock: Clock) -> None:
    service.read(1, [1])
    clock.advance(SETTINGS.cache_max_age_s)
    assert service.read(1, [1]).source == "store"


def test_when_the_store_goes_away_reads_serve_from_the_cache_and_say_so(
    service: ImpressionHistory, outage: Outage, clock: Clock
) -> None:
    service.submit([impression(title=1)])
    service.read(1, [1])
    outage.down = True
    fresh = service.read(1, [1])  # within its age: an ordinary hit
    assert (fresh.source, fresh.stale) == ("node", False)
    clock.advance(3600)
    stale = service.read(1, [1])
    assert (stale.source, stale.stale, stale.histories[1].count_30d) == ("node", True, 1)
    assert stale.note is not None and "the store cannot be read" in stale.note and "3600 s old" in stale.note
    with pytest.raises(StoreUnavailableError, match="profile 2's history is not cached"):
        service.read(2, [1])
    assert service.metrics.answers["stale"] == 1


def test_dial_up_zero_reads_the_store_every_time(outage: Outage, clock: Clock) -> None:
    settings = ImpressionSettings(store="memory", dial_up=0.0, flush_interval_ms=1)
    with ImpressionHistory(settings, outage, clock=clock) as service:
        service.submit([impression(title=1)])
        for _ in range(3):
            assert service.read(1, [1]).source == "store"
        assert service.metrics.store_reads["uncached"] == 3
        assert len(service.cache) == 0


def test_the_dial_up_share_is_stable_and_grows_by_adding_profiles() -> None:
    profiles = range(20_000)
    at_10 = {p for p in profiles if Rollout(0.10, 0.0).cached(p)}
    at_30 = {p for p in profiles if Rollout(0.30, 0.0).cached(p)}
    assert 0.09 < len(at_10) / len(profiles) < 0.11
    assert 0.29 < len(at_30) / len(profiles) < 0.31
    assert at_10 <= at_30  # dialling up keeps the profiles already on the cache
    shadowed = {p for p in profiles if Rollout(0.10, 0.10).shadowed(p)}
    assert 0.09 < len(shadowed) / len(profiles) < 0.11
    assert len(shadowed & at_10) < 0.02 * len(profiles)  # the two shares are independent


def test_shadow_finds_a_cache_that_disagrees_with_the_store(outage: Outage, clock: Clock) -> None:
    settings = ImpressionSettings(store="memory", dial_up=0.0, shadow_share=1.0, flush_interval_ms=1)
    with ImpressionHistory(settings, outage, clock=clock) as service:
        service.submit([impression(title=1)])
        assert service.read(1, [1]).source == "store"  # a miss: loaded, nothing to compare yet
        agreed = service.read(1, [1])
        assert agreed.source == "store"  # shadow only: the store's answer is served
        assert (service.rollout.comparisons, service.rollout.mismatches) == (1, 0)
        # another node stores an impression: this node's cache does not know it yet
        event = impression(title=1, page="search")
        outage.store.append([StoredImpression.of(event, service.collector.key(event))])
        served = service.read(1, [1])
        assert served.histories[1].count_1d == 2  # the member sees the store's answer
        assert (service.rollout.comparisons, service.rollout.mismatches) == (2, 1)
        (example,) = service.rollout.examples()
        assert example.profile == 1 and example.source == "node"
        assert example.titles == {1: (seen(1), TitleHistory(2, 2, 2, NOW, (NOW, NOW)))}
        assert service.metrics.store_reads["shadow"] == 2


def test_a_dialled_up_shadowed_profile_is_served_from_the_cache(outage: Outage, clock: Clock) -> None:
    settings = ImpressionSettings(store="memory", dial_up=1.0, shadow_share=1.0, flush_interval_ms=1)
    with ImpressionHistory(settings, outage, clock=clock) as service:
        service.read(1, [1])
        event = impression(title=1)
        outage.store.append([StoredImpression.of(event, service.collector.key(event))])
        answer = service.read(1, [1])
        assert (answer.source, answer.histories[1]) == ("node", UNSEEN)
        assert service.rollout.mismatches == 1


def test_two_nodes_share_a_cache(clock: Clock) -> None:
    store, shared = InMemoryImpressionStore(), InMemorySharedCache()
    a = ImpressionHistory(SETTINGS, store, shared, clock)
    b = ImpressionHistory(SETTINGS, store, shared, clock)
    try:
        a.submit([impression(title=1)])
        assert a.read(1, [1]).source == "store"  # and put in the shared cache
        answer = b.read(1, [1])
        assert (answer.source, answer.histories[1]) == ("shared", seen(1))
        b.submit([impression(title=2)])  # b's write reaches the shared entry too
        clock.advance(SETTINGS.cache_max_age_s)  # a's node entry ages out
        answer = a.read(1, [2])
        assert (answer.source, answer.histories[2]) == ("shared", seen(1))
        assert store.reads == 1
    finally:
        a.close(timeout=1)
        b.close(timeout=1)


def test_without_a_node_cache_the_shared_cache_still_serves(clock: Clock) -> None:
    store, shared = InMemoryImpressionStore(), InMemorySharedCache()
    settings = ImpressionSettings(store="memory", cache_entries=0, flush_interval_ms=1)
    with ImpressionHistory(settings, store, shared, clock) as service:
        assert [service.read(1, [1]).source for _ in range(3)] == ["store", "shared", "shared"]
        assert store.reads == 1


@pytest.mark.parametrize("_", [pytest.param(None, marks=services.needs("redis"))])
def test_two_nodes_share_a_redis_cache(_: None, clock: Clock) -> None:
    from marrow.impressions.rediscache import RedisSharedCache

    store = InMemoryImpressionStore()
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    a = ImpressionHistory(SETTINGS, store, RedisSharedCache(services.REDIS_URL, 30, prefix), clock)
    b = ImpressionHistory(SETTINGS, store, RedisSharedCache(services.REDIS_URL, 30, prefix), clock)
    try:
        a.submit([impression(title=1)])
        a.read(1, [1])
        b.submit([impression(title=2)])
        answer = b.read(1, [1, 2])
        assert (answer.source, answer.histories) == ("shared", {1: seen(1), 2: seen(1)})
        assert store.reads == 1
    finally:
        a.close(timeout=1)
        b.close(timeout=1)


def test_expire_drops_what_is_past_the_retention(service: ImpressionHistory, outage: Outage) -> None:
    service.submit([impression(title=1, timestamp=NOW - 30 * DAY_MS + 1), impression(title=2)])
    assert service.expire() == 0
    service.clock.advance(2 * DAY_MS / 1000)  # type: ignore[attr-defined]
    assert service.expire() == 1
    assert [title for _, title in outage.store.read(1, 0)] == [2]


def test_the_flusher_expires_old_days_at_most_once_an_hour(
    service: ImpressionHistory, outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired: list[int] = []
    monkeypatch.setattr(outage, "expire", lambda day: expired.append(day) or 0)
    clock: Clock = service.clock  # type: ignore[assignment]
    for minutes, runs in [(0, 0), (60, 1), (90, 1), (120, 2)]:
        clock.now = T0 + minutes * 60
        service.submit([impression(title=minutes, clock=clock)])  # expiry runs after a write
        assert len(expired) == runs, minutes
    assert expired[-1] == (NOW + 2 * 3_600_000) // DAY_MS - 30


def test_status_and_metrics_say_what_the_service_is_doing(service: ImpressionHistory, outage: Outage) -> None:
    service.submit([impression(title=1)])
    service.read(1, [1])
    service.read(1, [1])
    status = service.status()
    assert status["store"] == {"kind": "Outage", "available": True, "error": None}
    assert status["metrics"]["hit_rate"] == 0.5
    assert status["metrics"]["cache_entries"] == 1
    assert status["rollout"]["dial_up"] == 1.0
    text = service.metrics.exposition().decode()
    assert 'marrow_impressions_cache_hits_total{tier="node"} 1.0' in text
    assert 'marrow_impressions_store_reads_total{reason="miss"} 1.0' in text
    assert 'marrow_impressions_events_total{outcome="stored"} 1.0' in text
    assert "marrow_impressions_buffer_events 0.0" in text
