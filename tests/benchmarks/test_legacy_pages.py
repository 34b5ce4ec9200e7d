"""Legacy page construction shows what Marrow's shows: same layouts, same assembly, data from keys.

The property: for any small catalogue (ties in popularity and dates included) and any signed-out
visitor, the legacy builder over the consumer's key space builds the same sections and cards, in the
same fragments, as :class:`marrow.pages.PageBuilder` over a store version of the same records.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from legacy_data import DictTable, consumed

from headline_pages import shape
from legacy.pages import LegacyPageBuilder
from marrow import records, store
from marrow.pages import Fragment, Layouts, PageBuilder, Visitor

LAYOUTS = Layouts.load()
COUNTRIES = ["US", "DE", "FR"]
GENRES = ["Drama", "Comedy", "Thriller", "Crime"]


@st.composite
def catalogues(draw: Any) -> list[Any]:
    n = draw(st.integers(1, 60))
    out: list[Any] = []
    for i in range(1, n + 1):
        out.append(
            records.Title(
                i, f"t-{i}", f"Title {i}", "movie", "", 2000, draw(st.sampled_from([0, 7, 13, 16, 18])), 90,
                draw(st.lists(st.sampled_from(GENRES), min_size=1, max_size=3, unique=True)), [],
                frozenset(draw(st.lists(st.sampled_from(COUNTRIES), max_size=3))),
                draw(st.integers(0, 5)), draw(st.integers(0, 5)),  # small ranges: ties are common
                {d: f"https://cdn/{d}/{i}.jpg" for d in records.DEVICES},
            )
        )  # fmt: skip
    for i in range(1, draw(st.integers(0, 12)) + 1):
        featured = draw(st.lists(st.integers(1, n), max_size=3))
        hero = {d: f"https://cdn/{d}/s{i}.jpg" for d in records.DEVICES}
        genres = draw(st.lists(st.sampled_from(GENRES), max_size=2))
        published = draw(st.integers(0, 3))
        out.append(
            records.Story(i, f"s-{i}", f"Story {i}", f"About {i}", "[]", hero, featured, genres, published, 1)
        )
    return out


def state_of(recs: list[Any]) -> store.ReadState:
    ws = store.WriteState(store.Schema.from_classes(*records.TYPES))
    for r in recs:
        ws.add(r)
    return store.ReadState.from_snapshot(ws.commit(version=1).snapshot())


class Counting:
    def __init__(self, table: DictTable):
        self.table, self.calls = table, 0

    def get_many(self, keys: list[str]) -> dict[str, bytes | None]:
        self.calls += 1
        return self.table.get_many(keys)


def whole_page(build: Any, *args: Any, **kw: Any) -> list[Fragment]:
    fragments = [build(*args, **kw)]
    while fragments[-1].cursor:
        fragments.append(build(*args, **{**kw, "cursor": fragments[-1].cursor}))
    return fragments


@settings(max_examples=40)
@given(
    catalogues(),
    st.sampled_from([*COUNTRIES, "JP"]),
    st.sampled_from(records.DEVICES),
    st.sampled_from([0, 7, 12, 16, 18]),
)
def test_legacy_pages_are_marrows_pages(recs: list[Any], country: str, device: str, maturity: int) -> None:
    state = state_of(recs)
    table, _ = consumed(recs)
    visitor = Visitor(country, device, maturity)
    builder = PageBuilder(LAYOUTS)
    try:
        ours = whole_page(builder.build, state, "home", visitor)
        for batching in ("fragment", "section"):
            legacy = LegacyPageBuilder(LAYOUTS, table, batching=batching)
            assert shape(whole_page(legacy.build, "home", visitor)) == shape(ours)
        if "Story" in state and state["Story"].ordinals().size:
            story = int(state["Story"][int(state["Story"].ordinals()[0])].id)
            theirs = whole_page(LegacyPageBuilder(LAYOUTS, table).build, "story", visitor, subject=story)
            assert shape(theirs) == shape(whole_page(builder.build, state, "story", visitor, subject=story))
    finally:
        builder.close()


def test_a_fragment_is_two_calls_or_two_per_section() -> None:
    art = {d: "" for d in records.DEVICES}
    recs = [
        records.Title(
            i, f"t-{i}", f"T{i}", "movie", "", 2000, 0, 90, ["Drama"], [], frozenset({"US"}), i, i, art
        )
        for i in range(1, 50)
    ]
    table, _ = consumed(recs)
    visitor = Visitor("US", "web", 18)
    by_fragment, by_section = Counting(table), Counting(table)
    first = LegacyPageBuilder(LAYOUTS, by_fragment).build("home", visitor)
    LegacyPageBuilder(LAYOUTS, by_section, batching="section").build("home", visitor)
    assert by_fragment.calls == 2
    assert by_section.calls == 2 * 3  # web: six sections a fragment, three of which read keys signed out
    assert [s.key for s in first.sections] == ["top10", "trending", "new_releases"]


def test_what_the_key_space_cannot_answer_is_refused() -> None:
    table = DictTable()
    legacy = LegacyPageBuilder(LAYOUTS, table)
    with pytest.raises(ValueError, match="signed-out"):
        legacy.build("home", Visitor("US", "web", 18, profile=7))
    with pytest.raises(ValueError, match="no rows for a 'search' section"):
        legacy.build("search", Visitor("US", "web", 18))
    with pytest.raises(ValueError, match="batching"):
        LegacyPageBuilder(LAYOUTS, table, batching="page")
