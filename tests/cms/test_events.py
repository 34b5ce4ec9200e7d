"""Events from the CMS to ingestion: the outbox and ledger (over both databases), the relay, and the
event bus contract, run on the in-process queue and on the real NATS JetStream server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

import services
from marrow.cms import CMS, ContentEvent, EventBus, InProcessBus, Relay, Story
from marrow.errors import EventBusError


def story(headline: str = "Hello", slug: str = "hello") -> Story:
    return Story(headline=headline, slug=slug)


# --- outbox, ledger and relay -----------------------------------------------------------------------


def test_the_relay_hands_pending_events_over_once(cms_store: CMS) -> None:
    bus = InProcessBus()
    cms_store.save("story", None, story(), base=None, editor="ana")
    cms_store.publish("story", 1, editor="ana")
    relay = Relay(cms_store.outbox, bus)
    assert relay.run_once() == 2
    assert relay.run_once() == 0
    got = bus.receive(10, timeout=0)
    assert [(d.event.action, d.event.revision, d.attempt) for d in got] == [
        ("saved", 1, 1),
        ("published", 1, 1),
    ]


def test_an_event_stays_unsettled_until_each_channel_has_applied_it(cms_store: CMS) -> None:
    saved = cms_store.save("story", None, story(), base=None, editor="ana").event
    published = cms_store.publish("story", 1, editor="ana").event
    assert cms_store.outbox.unsettled() == [saved, published]
    cms_store.ledger.record("preview", [(published, 7, None)])  # a later event settles the earlier
    assert cms_store.outbox.unsettled() == [published]  # live has not applied it yet
    cms_store.ledger.record("live", [(published, 8, None)])
    assert cms_store.outbox.unsettled() == []


def test_recover_hands_over_what_a_lost_in_process_queue_held(cms_store: CMS) -> None:
    cms_store.save("story", None, story(), base=None, editor="ana")
    Relay(cms_store.outbox, InProcessBus()).run_once()  # relayed into a queue that is then lost
    assert cms_store.outbox.pending() == []
    bus = InProcessBus()
    assert Relay(cms_store.outbox, bus).recover() == 1
    assert [d.event.kind for d in bus.receive(10, timeout=0)] == ["story"]


def test_the_ledger_never_goes_back_to_an_older_event(cms_store: CMS) -> None:
    first = cms_store.save("story", None, story(), base=None, editor="ana").event
    second = cms_store.save("story", 1, story("Two"), base=1, editor="ana").event
    cms_store.ledger.record("preview", [(second, 12, None)])
    cms_store.ledger.record("preview", [(first, None, [{"field": "headline", "message": "x"}])])
    entry = cms_store.ledger.entries("preview", [("story", 1), ("story", 99)])
    assert list(entry) == [("story", 1)]
    assert (entry["story", 1].seq, entry["story", 1].offset, entry["story", 1].errors) == (
        second.seq,
        12,
        None,
    )


def test_the_relay_thread_relays_when_nudged(cms_store: CMS) -> None:
    bus = InProcessBus()
    relay = Relay(cms_store.outbox, bus, interval=30)
    relay.start()
    try:
        cms_store.save("story", None, story(), base=None, editor="ana")
        relay.notify()
        assert [d.event.id for d in bus.receive(1, timeout=10)] == [1]
    finally:
        relay.close()


class RefusingBus(InProcessBus):
    def publish(self, events: object) -> None:
        raise EventBusError("the bus is down")


def test_events_a_bus_refuses_stay_in_the_outbox(cms_store: CMS) -> None:
    cms_store.save("story", None, story(), base=None, editor="ana")
    with pytest.raises(EventBusError):
        Relay(cms_store.outbox, RefusingBus()).run_once()
    assert len(cms_store.outbox.pending()) == 1


# --- the bus contract -------------------------------------------------------------------------------


def event(seq: int) -> ContentEvent:
    return ContentEvent(seq, "saved", "story", seq, 1, "ana", 1_800_000_000.0)


@pytest.fixture(params=["inprocess", pytest.param("nats", marks=services.needs("nats"))])
def bus(request: pytest.FixtureRequest) -> Iterator[EventBus]:
    if request.param == "inprocess":
        yield InProcessBus()
        return
    from marrow.cms.nats import NatsBus

    nats_bus = NatsBus(services.NATS_URL, subject=f"marrow.test.{uuid.uuid4().hex}", durable="test")
    try:
        yield nats_bus
    finally:
        nats_bus.delete_stream()
        nats_bus.close()


def receive_all(bus: EventBus, n: int, timeout: float = 10) -> list:  # type: ignore[type-arg]
    got: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += bus.receive(n - len(got), timeout=0.5)
    return got


def test_bus_delivers_what_was_published_in_order(bus: EventBus) -> None:
    bus.publish([event(1), event(2), event(3)])
    got = receive_all(bus, 3)
    assert [d.event for d in got] == [event(1), event(2), event(3)]
    for d in got:
        d.ack()
    assert bus.receive(10, timeout=0.3) == []


def test_bus_delivers_a_retried_event_again_after_its_delay(bus: EventBus) -> None:
    bus.publish([event(1)])
    (first,) = receive_all(bus, 1)
    first.retry(0.2)
    assert bus.receive(1, timeout=0.05) == []  # not before the delay
    (again,) = receive_all(bus, 1)
    assert again.event == event(1) and again.attempt == 2
    again.ack()
    assert bus.receive(1, timeout=0.5) == []


def test_bus_receive_waits_no_longer_than_its_timeout(bus: EventBus) -> None:
    assert bus.receive(5, timeout=0.2) == []


@pytest.mark.nats
@pytest.mark.skipif(services.unreachable("nats") is not None, reason=services.unreachable("nats") or "")
def test_nats_drops_a_duplicate_the_relay_sends_again() -> None:
    from marrow.cms.nats import NatsBus

    bus = NatsBus(services.NATS_URL, subject=f"marrow.test.{uuid.uuid4().hex}", durable="test")
    try:
        bus.publish([event(1), event(2)])
        bus.publish([event(1)])  # the relay crashed before marking it relayed, and sent it again
        got = receive_all(bus, 3, timeout=2)
        assert [d.event.seq for d in got] == [1, 2]
    finally:
        bus.delete_stream()
        bus.close()


def test_nats_bus_names_a_server_that_is_down() -> None:
    from marrow.cms.nats import NatsBus

    with pytest.raises(EventBusError, match=r"127\.0\.0\.1:1\b"):
        NatsBus("nats://127.0.0.1:1", timeout=0.5)
