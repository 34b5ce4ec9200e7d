"""The ingestion pipeline end to end, over both CMS databases: saves reach preview, publishes reach
live, errors are reported per field and write nothing, and a redelivered event changes nothing."""

from __future__ import annotations

import json

import pytest

from cms_content import NOW, Setup, article, setup
from marrow.cms import CMS, Collection, ImageBlock, Story, TextBlock, TitleCard, VideoEmbed
from marrow.ingest import Report


@pytest.fixture
def s(cms_store: CMS) -> Setup:
    return setup(cms_store)


def test_the_seeded_catalogue_is_in_both_channels(s: Setup) -> None:
    for writer in (s.live, s.preview):
        dark = writer.read()["Title"].get(10)
        assert dark is not None and dark.name == "Dark" and dark.cast == ["Louis Hofmann"]
        assert dark.artwork["mobile"] == "https://cdn.marrow.test/titles/10/boxart.jpg?w=342&h=192&fit=crop"
        assert dark.countries == frozenset({"US", "GB", "DE", "FR", "JP", "BR", "IN"})
    assert s.live.updates == [(3, 0)]  # one bulk update for the whole catalogue


def test_a_saved_story_is_in_preview_at_the_offset_returned_and_not_live(s: Setup) -> None:
    saved = s.cms.save("story", None, article(), base=None, editor="ana")
    report = s.ingestion.ingest([saved.event])
    assert isinstance(report, Report) and report.errors == []
    offset = report.offsets["preview"]
    assert report.outcome("preview", "story", 1).offset == offset  # type: ignore[union-attr]
    story = s.preview.read(offset)["Story"].get(1)
    assert story.headline == "Why Dark works" and story.revision == 1 and story.titles == [10]
    assert story.hero["tv"] == "https://cdn.marrow.test/stories/hero.jpg?w=1920&h=1080&fit=crop"
    blocks = json.loads(story.body)
    link = '<a class="title" href="/titles/dark" data-title="10">Dark</a>'
    assert blocks[0]["html"] == f"<p>The ending of {link} is <em>brilliant</em>.</p>"
    assert blocks[1]["name"] == "Dark" and blocks[1]["cast"] == ["Louis Hofmann"]
    assert blocks[1]["synopsis"] == "All about Dark."
    assert s.live.read()["Story"].get(1) is None
    assert "live" not in report.offsets


def test_publish_writes_live_and_unpublish_takes_it_down(s: Setup) -> None:
    saved = s.cms.save("story", None, article(), base=None, editor="ana")
    published = s.cms.publish("story", 1, editor="ana", revision=1)
    report = s.ingestion.ingest([saved.event, published.event])
    live = s.live.read(report.offsets["live"])["Story"].get(1)
    assert live.headline == "Why Dark works" and live.published == int(published.event.at)
    down = s.cms.unpublish("story", 1, editor="ana")
    report = s.ingestion.ingest([down.event])
    assert s.live.read(report.offsets["live"])["Story"].get(1) is None
    assert s.preview.read()["Story"].get(1) is not None  # editors still see the draft


def test_errors_are_reported_per_field_and_nothing_is_written(s: Setup) -> None:
    good = s.cms.save("story", None, article(), base=None, editor="ana")
    s.ingestion.ingest([good.event]).raise_for_errors()
    writes = len(s.preview.updates)
    broken = article(
        "",
        template="article",
        blocks=[
            TextBlock(text="See {{title:999}}."),
            TitleCard(title=998),
            ImageBlock(asset=5),
            VideoEmbed(asset=1),
        ],
    )
    bad = s.cms.save("story", 1, broken, base=1, editor="ana")
    report = s.ingestion.ingest([bad.event])
    found = {(e.field, e.message) for e in report.errors}
    assert found == {
        ("headline", "required: it is empty"),
        ("blocks[0].text", "placeholder {{title:999}}: title 999 does not exist"),
        ("blocks[1].title", "title 998 does not exist"),
        ("blocks[2].asset", "asset 5 is a video, not an image"),
        ("blocks[3].asset", "asset 1 is an image, not a video"),
    }
    assert len(s.preview.updates) == writes and "preview" not in report.offsets
    assert s.preview.read()["Story"].get(1).headline == "Why Dark works"  # the last good version
    entry = s.cms.ledger.entries("preview", [("story", 1)])["story", 1]
    assert entry.revision == 2 and entry.offset is None and len(entry.errors or []) == 5
    with pytest.raises(Exception, match="5 ingestion error") as e:
        report.raise_for_errors()
    assert len(e.value.errors) == 5  # type: ignore[attr-defined]


def test_an_unknown_template_is_an_error_on_its_field(s: Setup) -> None:
    saved = s.cms.save("story", None, article(template="gallery"), base=None, editor="ana")
    (error,) = s.ingestion.ingest([saved.event]).errors
    assert error.field == "template" and "unknown template 'gallery'" in error.message
    assert "article, list, interview, news" in error.message


def test_template_requirements(s: Setup) -> None:
    story = Story(headline="Top picks", slug="top", template="list", hero=4, blocks=[TitleCard(title=10)])
    saved = s.cms.save("story", None, story, base=None, editor="ana")
    (error,) = s.ingestion.ingest([saved.event]).errors
    assert (error.field, error.message) == (
        "blocks",
        "a list story needs at least 3 title block(s), it has 1",
    )


def test_live_does_not_resolve_a_reference_to_an_unpublished_title(s: Setup) -> None:
    from cms_content import title

    s.cms.save("title", 20, title("Draft show", "draft-show", [1], 1), base=None, editor="ana")
    story = article(blocks=[TextBlock(text="New: {{title:20}}")])
    s.cms.save("story", None, story, base=None, editor="ana")
    s.cms.publish("story", 1, editor="ana")
    report = s.ingestion.ingest_pending()
    live_errors = [(o.channel, e.message) for o in report.outcomes for e in o.errors]
    assert live_errors == [("live", "placeholder {{title:20}}: title 20 does not exist or is not published")]
    assert s.preview.read()["Story"].get(1) is not None  # preview sees drafts: it resolves there


def test_a_record_never_refers_to_a_title_with_no_record(s: Setup) -> None:
    from cms_content import title

    broken_title = title("No genres", "no-genres", [1], 1, genres=[])  # fails validation
    t = s.cms.save("title", 30, broken_title, base=None, editor="ana")
    story = s.cms.save(
        "story", None, article(blocks=[TextBlock(text="x"), TitleCard(title=30)]), base=None, editor="a"
    )
    report = s.ingestion.ingest([t.event, story.event])
    assert {(e.kind, e.field) for e in report.errors} == {("title", "genres"), ("story", "titles")}
    assert s.preview.read()["Story"].get(1) is None


def test_a_redelivered_or_older_event_changes_nothing(s: Setup) -> None:
    first = s.cms.save("story", None, article("One"), base=None, editor="ana")
    second = s.cms.save("story", 1, article("Two"), base=1, editor="ana")
    report = s.ingestion.ingest([second.event, first.event, second.event])  # any order, repeats
    assert [o.skipped for o in report.outcomes] == [True, True, False]
    writes = len(s.preview.updates)
    again = s.ingestion.ingest([first.event, second.event])
    assert all(o.skipped for o in again.outcomes) and again.offsets == {}
    assert len(s.preview.updates) == writes
    assert again.outcome("preview", "story", 1).offset == report.offsets["preview"]  # type: ignore[union-attr]
    assert s.preview.read()["Story"].get(1).headline == "Two"


def test_republishing_after_unpublish_is_applied_again(s: Setup) -> None:
    s.cms.save("story", None, article(), base=None, editor="ana")
    events = [s.cms.publish("story", 1, editor="ana").event, s.cms.unpublish("story", 1, editor="ana").event]
    events.append(s.cms.publish("story", 1, editor="ana").event)  # the same revision, a later event
    for e in events:
        s.ingestion.ingest([e])
    assert s.live.read()["Story"].get(1) is not None


def test_collections_resolve_their_titles(s: Setup) -> None:
    ok = s.cms.save(
        "collection",
        None,
        Collection(name="Dark picks", slug="dark-picks", titles=[10, 11]),
        base=None,
        editor="a",
    )
    bad = s.cms.save(
        "collection", None, Collection(name="Bad", slug="bad", titles=[10, 404, 10]), base=None, editor="a"
    )
    report = s.ingestion.ingest([ok.event, bad.event])
    assert {(e.id, e.field) for e in report.errors} == {(2, "titles[1]"), (2, "titles")}
    assert s.preview.read()["Collection"].get(1).titles == [10, 11]


def test_a_title_is_available_where_its_windows_are_open_at_ingestion(s: Setup) -> None:
    from cms_content import title
    from marrow.cms import Window

    windows = [
        Window(countries=["US", "CA"], start=NOW - 1000),
        Window(countries=["GB"], start=NOW - 5000, end=NOW - 1),  # ended
        Window(countries=["JP"], start=NOW + 1000),  # not started
    ]
    saved = s.cms.save(
        "title", 40, title("Windows", "windows", [1], 1, availability=windows), base=None, editor="a"
    )
    report = s.ingestion.ingest([saved.event])
    record = s.preview.read(report.offsets["preview"])["Title"].get(40)
    assert record.countries == frozenset({"US", "CA"}) and record.added == NOW - 1000


def test_rules_fill_in_summary_genres_and_a_news_hero(s: Setup) -> None:
    news = Story(
        headline="Ozark returns",
        slug="ozark-returns",
        template="news",
        blocks=[TextBlock(text="**Big news**: {{title:11}} is back! More soon."), TitleCard(title=12)],
    )
    saved = s.cms.save("story", None, news, base=None, editor="ana")
    report = s.ingestion.ingest([saved.event])
    story = s.preview.read(report.offsets["preview"])["Story"].get(1)
    assert story.summary == "Big news: Ozark is back!"
    assert story.genres == ["Crime", "Drama", "Comedy"]
    assert story.hero["web"].startswith("https://cdn.marrow.test/titles/11/boxart.jpg")


def test_a_video_embed_gets_its_source_and_poster(s: Setup) -> None:
    saved = s.cms.save(
        "story", None, article(blocks=[TextBlock(text="x"), VideoEmbed(asset=5)]), base=None, editor="a"
    )
    report = s.ingestion.ingest([saved.event])
    video = json.loads(s.preview.read(report.offsets["preview"])["Story"].get(1).body)[1]
    assert video["src"] == "https://cdn.marrow.test/videos/trailer.mp4" and video["duration"] == 90
    assert video["poster"]["tv"].startswith("https://cdn.marrow.test/stories/hero.jpg")


def test_a_layout_with_mistakes_is_refused_field_by_field(s: Setup) -> None:
    from marrow.cms import PageLayout, SectionSpec

    layout = PageLayout(
        page="home",
        device="fridge",
        sections=[
            SectionSpec(kind="collection"),
            SectionSpec(kind="carousel"),
            SectionSpec(kind="trending", limit=0),
        ],
    )
    saved = s.cms.save("layout", None, layout, base=None, editor="ana")
    report = s.ingestion.ingest([saved.event])
    assert {e.field for e in report.errors} == {
        "device",
        "sections[0].collection",
        "sections[1].kind",
        "sections[2].limit",
    }


def test_a_layout_becomes_a_record_in_page_constructions_vocabulary(s: Setup) -> None:
    from marrow.cms import PageLayout, SectionSpec

    layout = PageLayout(
        page="genre",
        device="tv",
        sections=[
            SectionSpec(kind="genre", label="Top picks"),  # a genre page's own genre
            SectionSpec(kind="collection", collection=3, limit=12),
            SectionSpec(kind="new", genre=None),
            SectionSpec(kind="genre", genre="Crime", limit=8),
        ],
    )
    saved = s.cms.save("layout", None, layout, base=None, editor="ana")
    report = s.ingestion.ingest([saved.event])
    assert report.errors == []
    record = s.preview.read(report.offsets["preview"])["Layout"].get(saved.event.id)
    assert (record.page, record.device, record.key, record.revision) == ("genre", "tv", "genre/tv", 1)
    assert json.loads(record.sections) == [
        {"generator": "genre", "title": "Top picks", "length": 20},
        {"generator": "collection", "params": {"id": 3}, "length": 12},
        {"generator": "new_releases", "length": 20},
        {"generator": "genre", "params": {"genre": "Crime"}, "length": 8},
    ]
    refused = PageLayout(page="search", device="tv", sections=[SectionSpec(kind="trending")])
    report = s.ingestion.ingest([s.cms.save("layout", None, refused, base=None, editor="ana").event])
    assert [e.field for e in report.errors] == ["page"]  # search pages show results, not an editor's rows
