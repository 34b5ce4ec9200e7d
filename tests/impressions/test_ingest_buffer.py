"""Ingest: receipts that account for every event, a full buffer that refuses whole batches, a store
that goes away (ingest refuses; nothing buffered is lost), and idempotent redelivery."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import msgspec
import pytest

from marrow.errors import BufferFullError, ImpressionError, InvalidEventError, StoreUnavailableError
from marrow.impressions import Collector, ImpressionSettings, InMemoryImpressionStore, Refusal
from marrow.impressions.metrics import Metrics
from marrow.impressions.store import StoredImpression
from marrow.impressions.testing import Clock, Gate, Outage, impression

SETTINGS = ImpressionSettings(store="memory", buffer_events=10, batch_max=10, flush_interval_ms=1)


@pytest.fixture
def store() -> InMemoryImpressionStore:
    return InMemoryImpressionStore()


@pytest.fixture
def collected() -> list[StoredImpression]:
    return []


@pytest.fixture
def collector(store: InMemoryImpressionStore, collected: list[StoredImpression]) -> Iterator[Collector]:
    c = Collector(store, SETTINGS, Metrics(), collected.extend, Clock())
    yield c
    c.close(timeout=1)


def test_a_receipt_accounts_for_every_event(collector: Collector, store: InMemoryImpressionStore) -> None:
    receipt = collector.submit(
        [
            impression(title=1),
            impression(title=2, visible_share=0.2),  # filtered
            {"profile": 1},  # rejected
            impression(title=1),  # a duplicate of the first, in the same batch
            impression(title=3, device="fridge"),  # rejected by the settings
        ]
    )
    assert (receipt.accepted, receipt.stored, receipt.duplicates, receipt.durable) == (2, 1, 1, True)
    assert [r.index for r in receipt.rejected] == [2, 4]
    assert "missing required field" in receipt.rejected[0].reason
    assert receipt.filtered == [Refusal(1, "visible_share 0.2 is under min_visible_share 0.5")]
    assert len(store) == 1
    assert collector.metrics.events == {
        "stored": 1,
        "duplicate": 1,
        "filtered": 1,
        "rejected": 2,
        "refused": 0,
    }


def test_redelivery_is_idempotent(collector: Collector, collected: list[StoredImpression]) -> None:
    batch = [impression(title=t) for t in range(5)]
    assert collector.submit(batch).stored == 5
    again = collector.submit(batch)
    assert (again.stored, again.duplicates) == (0, 5)
    assert len(collected) == 5  # the cache hears of each impression once


def test_events_in_the_same_dedup_bucket_are_one_impression(collector: Collector) -> None:
    first = impression(title=1)
    assert collector.submit([first, impression(title=1, timestamp=first.timestamp + 60_000)]).stored == 1
    assert collector.submit([impression(title=1, timestamp=first.timestamp + 300_000)]).stored == 1


def test_a_json_batch_is_taken_and_a_bad_body_is_an_event_error(collector: Collector) -> None:
    receipt = collector.submit_json(msgspec.json.encode({"events": [impression(), {"title": "x"}]}))
    assert (receipt.accepted, [r.index for r in receipt.rejected]) == (1, [1])
    with pytest.raises(InvalidEventError, match=re.escape('not a batch {"events": [...]}')):
        collector.submit_json(b"[]")


def test_a_batch_over_batch_max_is_refused_whole(
    collector: Collector, store: InMemoryImpressionStore
) -> None:
    with pytest.raises(InvalidEventError, match=r"at most 10 events .* split it"):
        collector.submit([impression(title=t) for t in range(11)])
    assert len(store) == 0


def test_not_waiting_acknowledges_once_buffered(collector: Collector, store: InMemoryImpressionStore) -> None:
    receipt = collector.submit([impression()], wait=False)
    assert (receipt.accepted, receipt.durable, receipt.stored) == (1, False, None)
    assert collector.flush(5) and len(store) == 1


def test_a_full_buffer_refuses_the_whole_batch_and_takes_nothing(store: InMemoryImpressionStore) -> None:
    gate = Gate(store)
    c = Collector(gate, SETTINGS, Metrics(), clock=Clock())
    try:
        gate.hold()
        c.submit([impression(title=t) for t in range(4)], wait=False)
        assert gate.waiting.wait(5)  # the flusher is stuck writing those 4
        c.submit([impression(title=t) for t in range(10, 16)], wait=False)  # 10 of 10 now
        with pytest.raises(
            BufferFullError, match=r"buffer is full .* nothing of this batch was taken"
        ) as full:
            c.submit([impression(title=99)], wait=False)
        assert full.value.retry_after >= 1
        assert c.metrics.events["refused"] == 1
        gate.release()
        assert c.flush(5)
        assert len(store) == 10  # every event taken is stored; the refused one is not
        assert c.submit([impression(title=99)]).stored == 1  # room again
    finally:
        gate.release()
        c.close(timeout=1)


def test_a_store_that_goes_away_makes_ingest_refuse_and_loses_nothing(store: InMemoryImpressionStore) -> None:
    outage = Outage(store)
    c = Collector(outage, SETTINGS, Metrics(), clock=Clock())
    try:
        outage.down = True
        with pytest.raises(
            StoreUnavailableError, match=r"buffered but not yet stored .* resending them is safe"
        ):
            c.submit([impression(title=1), impression(title=2)], timeout=0.3)
        assert c.down is not None
        with pytest.raises(StoreUnavailableError, match="impressions are not being taken") as refused:
            c.submit([impression(title=3)])
        assert refused.value.retry_after >= 1
        assert c.pending() == 2  # accepted events are kept, in order, and retried
        outage.down = False
        assert c.flush(10)
        assert c.down is None
        assert [title for _, title in store.read(1, 0)] == [1, 2]
        # the client resends what was not acknowledged: stored once
        resent = c.submit([impression(title=1), impression(title=2), impression(title=3)])
        assert (resent.stored, resent.duplicates) == (1, 2)
        assert c.metrics.store_errors >= 1
    finally:
        outage.down = False
        c.close(timeout=1)


def test_a_store_that_fails_unexpectedly_is_retried_too(store: InMemoryImpressionStore) -> None:
    calls = []

    class Flaky(InMemoryImpressionStore):
        def append(self, rows):  # type: ignore[no-untyped-def]
            calls.append(len(rows))
            if len(calls) == 1:
                raise RuntimeError("disk on fire")
            return super().append(rows)

    flaky = Flaky()
    c = Collector(flaky, SETTINGS, Metrics(), clock=Clock())
    try:
        assert c.submit([impression()], timeout=5).stored == 1
        assert len(calls) == 2
    finally:
        c.close(timeout=1)


def test_concurrent_submitters_each_get_their_own_receipt(collector: Collector) -> None:
    receipts = {}

    def submit(n: int) -> None:
        receipts[n] = collector.submit([impression(profile=n, title=t) for t in range(2)])

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {n: (r.stored, r.duplicates) for n, r in receipts.items()} == {n: (2, 0) for n in range(5)}


def test_a_closed_collector_refuses(store: InMemoryImpressionStore) -> None:
    c = Collector(store, SETTINGS, Metrics(), clock=Clock())
    c.close()
    with pytest.raises(ImpressionError, match="closed"):
        c.submit([impression()])
