"""Pages read through a local client: the base version plus what was written since, in flight."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pages_dataset import story, title

from marrow import records, store
from marrow.pages import GENERATORS, Layouts, PageBuilder, Visitor
from marrow.pages.views import ClientViews
from marrow.raw import Delete, LocalClient, Upsert, Writer
from marrow.raw.namespace import Namespace

LAYOUT = """
[defaults]
fragment_rows = 1
[pages.home.all]
sections = [{ generator = "trending" }, { generator = "stories" }]
"""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Writer, LocalClient]]:
    ns = Namespace(tmp_path / "content", store.Schema.from_classes(*records.TYPES))
    with ns.writer(fold=False) as writer, ns.client() as client:
        writer.bulk_update(
            [Upsert(title(i)) for i in range(1, 61)] + [Upsert(story(i, [i])) for i in range(1, 6)]
        )
        assert writer.folder is not None
        writer.folder.fold()  # the titles are in the base version from here on
        client.consumer.wait_for(1)
        yield writer, client


def trending(views: ClientViews, offset: int | None = None, country: str = "US") -> list[tuple[int, str]]:
    builder = PageBuilder(Layouts.parse(LAYOUT, GENERATORS))
    page = builder.build(views.current(offset), "home", Visitor(country, "tv", 18))
    return [(c.id, c.name) for c in page.sections[0].items]


def test_edits_in_flight_show_on_the_page_at_once(live: tuple[Writer, LocalClient]) -> None:
    writer, client = live
    views = ClientViews(client)
    before = trending(views)
    assert before[:3] == [(1, title(1).name), (2, title(2).name), (3, title(3).name)]
    offset = writer.bulk_update(
        [
            Upsert(replace(title(1), name="Renamed in flight")),
            Delete("Title", 2),
            Upsert(replace(title(3), countries=frozenset({"JP"}))),
        ]
    )
    assert client.view().base is not None and client.view().base.version == 1  # nothing folded since
    after = trending(views, offset)  # read at the write's offset: the preview's read
    assert after[0] == (1, "Renamed in flight")
    assert 2 not in [i for i, _ in after] and 3 not in [i for i, _ in after]
    assert 3 in [i for i, _ in trending(views, offset, country="JP")]


def test_a_story_edited_in_flight_shows_in_its_row_and_on_its_page(live: tuple[Writer, LocalClient]) -> None:
    writer, client = live
    offset = writer.bulk_update([Upsert(replace(story(5, [5]), headline="Breaking: edited"))])
    builder = PageBuilder(Layouts.parse(LAYOUT, GENERATORS))
    first = builder.build(ClientViews(client).current(offset), "home", Visitor("US", "tv", 18))
    second = builder.build(
        ClientViews(client).current(offset), "home", Visitor("US", "tv", 18), cursor=first.cursor
    )
    assert second.sections[0].items[0].name == "Breaking: edited"
    assert client.view(offset=offset)["Story"].find("slug", "story-5")[0].headline == "Breaking: edited"


def test_a_cursor_keeps_its_overlay_offset_until_the_version_is_folded_over(
    live: tuple[Writer, LocalClient],
) -> None:
    writer, client = live
    views = ClientViews(client)
    builder = PageBuilder(Layouts.parse(LAYOUT, GENERATORS))
    first = builder.build(views.current(), "home", Visitor("US", "tv", 18))
    cursor = builder.codec.decode(first.cursor or "")
    writer.bulk_update([Upsert(replace(story(5, [5]), headline="Later edit"))])
    client.wait_for(writer.offset)
    same = views.at(cursor.tag, cursor.offset)
    assert same is not None and same.offset == cursor.offset  # the page goes on reading what it began on
    assert writer.folder is not None
    writer.folder.fold()
    client.consumer.wait_for(2)
    assert views.at(cursor.tag, cursor.offset) is None  # folded over: the next fragment reads the new version
    second = builder.build(views.current(), "home", Visitor("US", "tv", 18), cursor=first.cursor)
    assert not second.consistent
