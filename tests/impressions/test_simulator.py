"""The simulator: realistic, valid, reproducible events from any ``browse`` callable — and, wired to a
ranker that reads the history, a title shown often without a play sinks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from marrow.errors import ConfigError
from marrow.impressions import (
    HistoryReader,
    ImpressionHistory,
    ImpressionSettings,
    InMemoryImpressionStore,
    Screen,
    Section,
    Simulator,
    Visitor,
)
from marrow.impressions.events import to_impression
from marrow.impressions.testing import T0, Clock

NOW = int(T0 * 1000)


def home(visitor: Visitor) -> Screen:
    rows = [Section(f"row-{r}", list(range(r * 20, r * 20 + 20))) for r in range(10)]
    return Screen("home", rows, plays={45}, cached=visitor.profile % 2 == 1)


def test_the_same_seed_gives_the_same_events() -> None:
    one = [Simulator(home, seed=3).visit(p, "tv", NOW) for p in range(5)]
    two = [Simulator(home, seed=3).visit(p, "tv", NOW) for p in range(5)]
    assert one == two
    assert one != [Simulator(home, seed=4).visit(p, "tv", NOW) for p in range(5)]


def test_events_are_valid_and_look_like_browsing() -> None:
    sim = Simulator(home, seed=1)
    events = [e for p in range(200) for e in sim.visit(p, "web", NOW + p * 60_000).events]
    assert all(to_impression(e) == e for e in events)
    scrolls = Counter(e.scroll for e in events)
    assert {"none", "down", "right", "up"} <= set(scrolls)
    assert scrolls["none"] > scrolls["down"] > scrolls["up"]
    # a row shows its first titles wholly and the next one partly
    partial = [e for e in events if e.visible_share < 0.5]
    assert partial and all(e.position % 6 == 0 and e.position > 0 for e in partial)
    # rows scrolled past quickly give impressions under a second
    quick = sum(e.visible_ms < 1000 for e in events) / len(events)
    assert 0.15 < quick < 0.6
    assert {e.cached_page for e in events} == {True, False}
    sections = {e.section for e in events}
    assert "row-0" in sections and len(sections) > 3


def test_a_visit_plays_a_title_it_saw_and_ends() -> None:
    sim = Simulator(lambda v: Screen("home", [Section("r", [1, 2, 3, 4])], plays={3, 99}), seed=1)
    visit = sim.visit(1, "tv", NOW)
    assert visit.played == 3
    assert visit.ended > NOW
    assert (
        Simulator(lambda v: Screen("home", [Section("r", [1])], plays={99})).visit(1, "tv", NOW).played
        is None
    )


def test_browse_is_told_who_visits_and_how_often() -> None:
    visitors: list[Visitor] = []

    def browse(v: Visitor) -> Screen:
        visitors.append(v)
        return Screen("home", [])

    sim = Simulator(browse)
    sim.visit(7, "mobile", NOW)
    sim.visit(7, "mobile", NOW + 1)
    assert visitors == [Visitor(7, "mobile", NOW, 0), Visitor(7, "mobile", NOW + 1, 1)]


def test_an_unknown_device_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="no viewport for device 'fridge'"):
        Simulator(home).visit(1, "fridge", NOW)


class FatigueRanker:
    """A ranker as page construction would write one: popularity, less a penalty per impression
    in the last week, for titles the member has not played."""

    def __init__(self, history: HistoryReader, popularity: dict[int, float]):
        self.history = history
        self.popularity = popularity
        self.played: set[int] = set()

    def rank(self, profile: int, titles: Sequence[int]) -> list[int]:
        seen = self.history.histories(profile, titles)  # one call for the whole page
        score = {t: self.popularity[t] - (0 if t in self.played else 2.0 * seen[t].count_7d) for t in titles}
        return sorted(titles, key=lambda t: -score[t])


def test_a_title_shown_often_without_a_play_sinks() -> None:
    clock = Clock()
    service = ImpressionHistory(
        ImpressionSettings(store="memory", flush_interval_ms=1), InMemoryImpressionStore(), clock=clock
    )
    catalogue = list(range(1, 13))
    popularity = {t: 100.0 - t for t in catalogue}  # title 1 is the most popular
    ranker = FatigueRanker(service, popularity)
    liked = {4}  # the member plays title 4 whenever they see it, and never title 1
    order: list[list[int]] = []

    def browse(v: Visitor) -> Screen:
        row = ranker.rank(v.profile, catalogue)
        order.append(row)
        return Screen("home", [Section("top-picks", row)], plays=liked)

    sim = Simulator(browse, seed=2, deeper=0.0, scroll_right=0.0, back_up=0.0, dwell_ms=4000)
    try:
        for day in range(6):
            clock.now = T0 + day * 3600
            visit = sim.visit(1, "tv", int(clock() * 1000))
            service.submit(visit.events)
            if visit.played is not None:
                ranker.played.add(visit.played)
        first, last = order[0], order[-1]
        assert first.index(1) == 0  # most popular: first on the first visit
        assert last.index(1) >= 5  # shown on every visit, never played: out of the first five
        assert last.index(4) < first.index(4) or last.index(4) == 0  # played: it does not sink
        assert service.histories(1, [1])[1].count_1d >= 5
    finally:
        service.close(timeout=1)
