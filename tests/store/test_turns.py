"""Short GIL turns while a consumer switches versions: CPython's switch interval is lowered for as
long as a switch runs, then given back as it was."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_host import SCHEMA, Show

from marrow.store import Producer
from marrow.store._turns import SWITCH_INTERVAL, TURNS, Turns
from marrow.store.consumer import Consumer
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore

DEFAULT = 0.005


@pytest.fixture(autouse=True)
def interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(DEFAULT)
    yield
    sys.setswitchinterval(before)


def test_holds_lower_the_interval_until_the_last_one_ends() -> None:
    turns = Turns()
    turns.enter(0.0002)
    turns.enter(0.001)  # a second hold changes nothing
    assert sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6)
    turns.leave()
    assert sys.getswitchinterval() == pytest.approx(0.0002, abs=2e-6) and turns.holds == 1
    turns.leave()
    assert sys.getswitchinterval() == pytest.approx(DEFAULT, abs=2e-6) and turns.holds == 0
    with pytest.raises(RuntimeError, match="without a matching enter"):
        turns.leave()


def test_an_interval_already_shorter_is_kept_and_one_set_meanwhile_is_left_alone() -> None:
    turns = Turns()
    sys.setswitchinterval(0.0001)
    with turns.held(0.0002):
        assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)  # never raised
    assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)
    sys.setswitchinterval(DEFAULT)
    with turns.held(0.0002):
        sys.setswitchinterval(0.002)  # the application's own choice, made during the hold
    assert sys.getswitchinterval() == pytest.approx(0.002, abs=2e-6)
    with turns.held(None):
        assert sys.getswitchinterval() == pytest.approx(0.002, abs=2e-6)


def _world() -> tuple[InMemoryBlobStore, InMemoryAnnouncer, Producer]:
    store, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, store, announcer)
    producer.run_cycle(lambda w: w.add_all([Show(i, f"show {i}") for i in range(5)]))
    return store, announcer, producer


def test_a_refresh_runs_its_listeners_in_short_turns_and_gives_the_interval_back() -> None:
    store, announcer, _ = _world()
    during: list[float] = []
    consumer = Consumer(store, announcer, listeners=[lambda old, new: during.append(sys.getswitchinterval())])
    consumer.refresh()
    assert during == [pytest.approx(SWITCH_INTERVAL, abs=2e-6)]
    assert sys.getswitchinterval() == pytest.approx(DEFAULT, abs=2e-6) and TURNS.holds == 0

    def record(old: Any, new: Any) -> None:
        during.append(sys.getswitchinterval())

    untouched = Consumer(store, announcer, switch_interval=None, listeners=[record])
    untouched.refresh()
    assert during[-1] == pytest.approx(DEFAULT, abs=2e-6)
    with pytest.raises(ValueError, match="switch_interval"):
        Consumer(store, announcer, switch_interval=0)


def test_a_background_refresh_runs_in_short_turns_and_gives_the_interval_back() -> None:
    store, announcer, producer = _world()
    seen: list[float] = []

    class Watching:
        """Records the interval when the refresh thread first asks the store for a blob."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def retrieve_delta(self, origin: int, toward: int | None = None) -> Any:
            seen.append(sys.getswitchinterval())
            return store.retrieve_delta(origin, toward)

    consumer = Consumer(Watching(), announcer)  # type: ignore[arg-type]
    consumer.start()
    try:
        consumer.wait_for(1)
        version = producer.run_incremental(lambda inc: inc.add_or_modify(Show(9, "new"))).version
        consumer.wait_for(version)
        assert seen and seen[-1] == pytest.approx(SWITCH_INTERVAL, abs=2e-6)
        deadline = time.monotonic() + 10
        while TURNS.holds and time.monotonic() < deadline:  # ended just after the listeners ran
            time.sleep(0.01)
        assert TURNS.holds == 0 and sys.getswitchinterval() == pytest.approx(DEFAULT, abs=2e-6)
    finally:
        consumer.close()
    assert TURNS.holds == 0


def test_an_announcement_lowers_the_interval_until_its_refresh_ran_or_the_consumer_closed() -> None:
    store, announcer, _ = _world()
    consumer = Consumer(store, announcer)
    consumer.refresh()
    consumer._announce(1)  # the version it is on: nothing to switch
    assert TURNS.holds == 0
    consumer._announce(2)  # as the watcher's thread does: before the refresh thread wakes
    consumer._announce(3)  # one hold, however many announcements arrive before it runs
    assert TURNS.holds == 1 and sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL, abs=2e-6)
    consumer.close()
    assert TURNS.holds == 0 and sys.getswitchinterval() == pytest.approx(DEFAULT, abs=2e-6)
    pinned = Consumer(store, announcer)
    pinned.pin(1)
    pinned._announce(2)  # a pinned consumer does not move
    assert TURNS.holds == 0
    pinned.close()
