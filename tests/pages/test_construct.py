"""Page construction: sections, eligibility, dedup, fragments, deadlines and fallbacks, personalisation."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pages_dataset import COUNTRIES, MATURITY, state, title

from marrow.errors import RequestError
from marrow.pages import (
    GENERATORS,
    Engagement,
    Faults,
    Fragment,
    InMemoryEngagement,
    Layouts,
    PageBuilder,
    Visitor,
)
from marrow.store import ReadState

STATE = state()

HOME = """
[defaults]
fragment_rows = 3
[devices.tv]
row_length = 12
[devices.mobile]
row_length = 5
[pages.home.all]
sections = [
    { generator = "continue_watching" },
    { generator = "trending" },
    { generator = "because_you_watched" },
    { generator = "collection", params = { slug = "award-winners" } },
    { generator = "genre", params = { genre = "Drama" } },
    { generator = "new_releases" },
    { generator = "my_list" },
    { generator = "stories" },
]
[pages.title.all]
sections = [{ generator = "because_you_watched" }, { generator = "stories" }]
[pages.search.all]
kind = "gallery"
sections = [{ generator = "search" }, { generator = "search", params = { kind = "stories" } }]
"""


def builder(**kw: object) -> PageBuilder:
    return PageBuilder(Layouts.parse(HOME, GENERATORS), **kw)  # type: ignore[arg-type]


def whole_page(b: PageBuilder, visitor: Visitor, view: ReadState = STATE) -> list[Fragment]:
    out = [b.build(view, "home", visitor)]
    while out[-1].cursor is not None:
        out.append(b.build(view, "home", visitor, cursor=out[-1].cursor))
    return out


def title_ids(fragments: list[Fragment]) -> list[int]:
    return [c.id for f in fragments for s in f.sections if s.kind == "titles" for c in s.items]


def test_a_page_comes_in_fragments_in_layout_order() -> None:
    fragments = whole_page(builder(), Visitor(device="tv"))
    keys = [s.key for f in fragments for s in f.sections]
    # continue watching, because you watched and my list have nothing to show for a new visitor
    assert keys == [
        "trending",
        "collection(slug=award-winners)",
        "genre(genre=Drama)",
        "new_releases",
        "stories",
    ]
    assert [len(f.sections) for f in fragments] == [1, 3, 1]
    assert all(f.version == 1 and f.layout == "lolomo" for f in fragments)


@settings(max_examples=40)
@given(
    country=st.sampled_from(COUNTRIES),
    maturity=st.sampled_from(MATURITY),
    device=st.sampled_from(["tv", "web", "mobile"]),
)
def test_no_title_is_shown_twice_or_where_the_visitor_may_not_watch_it(
    country: str, maturity: int, device: str
) -> None:
    ids = title_ids(whole_page(builder(), Visitor(country, device, maturity)))
    assert len(ids) == len(set(ids)) > 0
    for i in ids:
        t = title(i)
        assert country in t.countries and t.maturity <= maturity


def test_rows_are_cut_and_formatted_for_the_device() -> None:
    for device, length in (("tv", 12), ("mobile", 5)):
        first = builder().build(STATE, "home", Visitor(device=device))
        row = first.sections[0]
        assert len(row.items) == length
        assert all(c.image == f"https://cdn.example/{device}/title-{c.id}.jpg" for c in row.items)


def test_trending_is_most_popular_first_and_the_collection_keeps_the_editors_order() -> None:
    fragments = whole_page(builder(), Visitor(country="US", device="tv"))
    sections = {s.key: [c.id for c in s.items] for f in fragments for s in f.sections}
    assert sections["trending"] == list(range(1, 13))
    assert sections["collection(slug=award-winners)"] == [250, 99]  # 12 and 7 were already shown


def test_a_tampered_cursor_is_refused() -> None:
    b = builder()
    cursor = b.build(STATE, "home", Visitor()).cursor
    assert cursor is not None
    forged = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    with pytest.raises(RequestError, match="not one this site issued"):
        b.build(STATE, "home", Visitor(), cursor=forged)
    with pytest.raises(RequestError):
        builder().build(STATE, "home", Visitor(), cursor=cursor)  # another builder's secret


# --- engagement ------------------------------------------------------------------------------------


def test_engagement_fills_continue_watching_my_list_and_because_you_watched() -> None:
    engagement = InMemoryEngagement()
    for e in (
        Engagement(7, 40, "play", 0.3),
        Engagement(7, 41, "play", 1.0),
        Engagement(7, 42, "add"),
        Engagement(7, 43, "add"),
        Engagement(7, 43, "remove"),
    ):
        engagement.record(e)
    fragments = whole_page(builder(engagement=engagement), Visitor(device="tv", profile=7))
    sections = {s.key: s for f in fragments for s in f.sections}
    assert [c.id for c in sections["continue_watching"].items] == [40]
    assert [c.id for c in sections["my_list"].items] == [42]
    because = sections["because_you_watched"]
    assert because.title == f"Because you watched {title(41).name}" and because.personalised
    assert 41 not in [c.id for c in because.items]
    assert all(set(title(c.id).genres) & set(title(41).genres) for c in because.items)


def test_a_play_triggers_a_row_in_the_next_fragment() -> None:
    engagement = InMemoryEngagement()
    b = builder(engagement=engagement)
    visitor = Visitor(device="tv", profile=9)
    first = b.build(STATE, "home", visitor)
    romance = next(i for i in range(1, 300) if title(i).genres[0] == "Romance")
    engagement.record(Engagement(9, romance, "play", 0.5, at=time.time() + 1))
    second = b.build(STATE, "home", visitor, cursor=first.cursor)
    assert second.sections[0].title == "More Romance"
    assert all("Romance" in title(c.id).genres for c in second.sections[0].items)


# --- deadlines and fallbacks -------------------------------------------------------------------------


def test_a_slow_personalised_section_falls_back_to_unpersonalised_and_the_late_answer_is_cached() -> None:
    engagement = InMemoryEngagement()
    engagement.record(Engagement(5, 41, "play", 1.0))
    layout = "[pages.home.tv]\nsections = [{ generator = 'because_you_watched', budget_ms = 20 }]"
    b = PageBuilder(
        Layouts.parse(layout, GENERATORS),
        engagement=engagement,
        faults=Faults.parse({"because_you_watched": {"delay_ms": 150}}),
    )
    visitor = Visitor(device="tv", profile=5)
    first = b.build(STATE, "home", visitor)
    assert [(f.section, f.served) for f in first.fallbacks] == [("because_you_watched", "unpersonalised")]
    assert "late: no answer within 20 ms" in first.fallbacks[0].reason
    assert first.sections[0].fallback == "unpersonalised" and first.sections[0].items
    b._pool.shutdown(wait=True)  # let the late answer arrive
    b._pool = type(b._pool)(4)
    second = b.build(STATE, "home", visitor)
    assert [f.served for f in second.fallbacks] == ["cached"]
    assert second.sections[0].title == f"Because you watched {title(41).name}"


def test_a_failing_section_serves_its_last_good_result_else_is_omitted() -> None:
    layout = "[pages.home.tv]\nsections = [{ generator = 'trending' }, { generator = 'new_releases' }]"
    good = PageBuilder(Layouts.parse(layout, GENERATORS))
    broken = PageBuilder(
        Layouts.parse(layout, GENERATORS), faults=Faults.parse({"trending": {"error_rate": 1}})
    )
    page = broken.build(STATE, "home", Visitor(device="tv"))
    assert [(f.section, f.served) for f in page.fallbacks] == [("trending", "omitted")]
    assert [s.key for s in page.sections] == ["new_releases"]
    good.build(STATE, "home", Visitor(device="tv"))
    broken._cache = good._cache  # the same process, once trending had worked
    again = broken.build(STATE, "home", Visitor(device="tv"))
    assert [(f.section, f.served) for f in again.fallbacks] == [("trending", "cached")]
    assert [c.id for c in again.sections[0].items] == [
        c.id for c in good.build(STATE, "home", Visitor("US", "tv")).sections[0].items
    ]


def test_the_page_deadline_bounds_every_section() -> None:
    layout = (
        "[pages.home.tv]\ndeadline_ms = 30\n"
        "sections = [{ generator = 'trending', budget_ms = 1000 }, { generator = 'genre', budget_ms = 1000,"
        " params = { genre = 'Drama' } }]"
    )
    b = PageBuilder(Layouts.parse(layout, GENERATORS), faults=Faults.parse({"genre": {"delay_ms": 400}}))
    page = b.build(STATE, "home", Visitor(device="tv"))
    assert [(f.section, f.served) for f in page.fallbacks] == [("genre(genre=Drama)", "omitted")]
    assert "late" in page.fallbacks[0].reason


# --- personalisation ---------------------------------------------------------------------------------


@dataclass
class Seen:
    count_7d: int
    last_seen_s: float | None

    @property
    def last_seen(self) -> int | None:  # milliseconds, as the impression history service gives it
        return None if self.last_seen_s is None else int(self.last_seen_s * 1000)


class FakeHistory:
    def __init__(self, seen: dict[int, Seen], delay: float = 0.0, fail: bool = False):
        self.seen, self.delay, self.fail = seen, delay, fail
        self.calls: list[tuple[int, list[int]]] = []

    def histories(self, profile: int, title_ids: Sequence[int]) -> Mapping[int, Seen]:
        self.calls.append((profile, list(title_ids)))
        time.sleep(self.delay)
        if self.fail:
            raise ConnectionError("history store down")
        return {t: self.seen[t] for t in title_ids if t in self.seen}


TRENDING = "[pages.home.tv]\nsections = [{ generator = 'trending' }, { generator = 'new_releases' }]"


def test_titles_shown_often_without_a_play_sink_and_history_is_read_once_per_fragment() -> None:
    history = FakeHistory({1: Seen(30, time.time() - 86_400), 2: Seen(12, time.time() - 5)})
    b = PageBuilder(Layouts.parse(TRENDING, GENERATORS), history=history)
    page = b.build(STATE, "home", Visitor(device="tv", profile=3))
    trending = [c.id for c in page.sections[0].items]
    assert trending[:3] == [3, 4, 5] and 1 not in trending[:10] and 2 not in trending[:10]
    assert len(history.calls) == 1  # one call for the whole fragment
    unranked = PageBuilder(Layouts.parse(TRENDING, GENERATORS)).build(
        STATE, "home", Visitor(device="tv", profile=3)
    )
    assert [c.id for c in unranked.sections[0].items] == list(range(1, 41))


def test_a_played_title_is_not_fatigued() -> None:
    engagement = InMemoryEngagement()
    engagement.record(Engagement(3, 1, "play", 0.2))
    history = FakeHistory({1: Seen(30, None)})
    b = PageBuilder(Layouts.parse(TRENDING, GENERATORS), history=history, engagement=engagement)
    assert b.build(STATE, "home", Visitor(device="tv", profile=3)).sections[0].items[0].id == 1


@pytest.mark.parametrize("history", [FakeHistory({1: Seen(30, None)}, delay=0.5), FakeHistory({}, fail=True)])
def test_late_or_failing_history_serves_the_unpersonalised_order(history: FakeHistory) -> None:
    b = PageBuilder(Layouts.parse(TRENDING, GENERATORS), history=history, history_budget_ms=20)
    page = b.build(STATE, "home", Visitor(device="tv", profile=3))
    assert [c.id for c in page.sections[0].items] == list(range(1, 41))
    assert [(f.section, f.served) for f in page.fallbacks] == [("history", "unpersonalised")]


# --- other pages ---------------------------------------------------------------------------------------


def test_a_title_page_shows_titles_like_it_and_stories_featuring_it() -> None:
    page = builder().build(STATE, "title", Visitor(device="tv"), subject=20)
    like, stories = page.sections
    assert like.title == "More like this" and 20 not in [c.id for c in like.items]
    assert {c.id for c in stories.items} == {19, 20}  # story i features titles i and i + 1


def test_a_search_page_finds_titles_and_stories() -> None:
    page = builder().build(STATE, "search", Visitor(device="web"), query="12")
    titles, stories = page.sections
    assert stories.items[0].name == "Story 12: behind the scenes"
    assert titles.items[0].name == title(12).name  # a whole word beats a prefix ("120")
    assert all("12" in c.name for c in titles.items)


def test_the_impression_history_service_plugs_in_as_the_history_reader() -> None:
    from marrow import impressions
    from marrow.impressions.testing import impression

    service = impressions.ImpressionHistory.open(impressions.ImpressionSettings(store="memory"))
    try:
        now = time.time()
        shown = [
            impression(profile=3, title=1, timestamp=int((now - 3600 * (i + 1)) * 1000)) for i in range(12)
        ]
        service.submit(shown, wait=True)
        b = PageBuilder(Layouts.parse(TRENDING, GENERATORS), history=service)
        page = b.build(STATE, "home", Visitor(device="tv", profile=3))
        trending = [c.id for c in page.sections[0].items]
        assert trending[0] == 2 and 1 in trending and trending.index(1) > 5  # shown 12 times, never played
        other = b.build(STATE, "home", Visitor(device="tv", profile=4))
        assert other.sections[0].items[0].id == 1  # another profile: untouched
    finally:
        service.close()
