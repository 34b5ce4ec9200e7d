"""Layouts load from configuration and refuse mistakes, naming where they are."""

from __future__ import annotations

import json

import pytest
from pages_dataset import state

from marrow import records
from marrow.errors import ConfigError
from marrow.pages import GENERATORS, Layouts, PageBuilder, Visitor


def test_the_shipped_layouts_load_with_every_generator_known() -> None:
    layouts = Layouts.load(generators=GENERATORS)
    for page in ("home", "title", "story", "genre", "search"):
        for device in ("tv", "web", "mobile"):
            layout = layouts.get(page, device)
            assert layout.sections and layout.deadline_ms == 3000
    assert layouts.get("home", "tv").row_length == 40
    assert layouts.get("home", "mobile").row_length == 15


GOOD = """
[defaults]
deadline_ms = 500
[pages.home.tv]
kind = "lolomo"
sections = [{ generator = "trending", budget_ms = 20 }, { generator = "genre", params = { genre = "Drama" } }]
"""


def test_a_layout_carries_its_sections_in_order() -> None:
    layout = Layouts.parse(GOOD, GENERATORS).get("home", "tv")
    assert [s.key for s in layout.sections] == ["trending", "genre(genre=Drama)"]
    assert layout.sections[0].budget_ms == 20 and layout.sections[1].budget_ms == 250
    assert layout.deadline_ms == 500


def test_a_page_or_device_without_a_layout_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"no layout for page 'search' on device 'tv'.*home/tv"):
        Layouts.parse(GOOD, GENERATORS).get("search", "tv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pages.home.tv]\nkind='grid'\nsections=[{generator='trending'}]", r"pages\.home\.tv\.kind: 'grid'"),
        (
            "[pages.home.tv]\nsections=[{generator='nope'}]",
            r"sections\[0\]\.generator: unknown generator 'nope'",
        ),
        ("[pages.home.tv]\nsections=[]", r"pages\.home\.tv\.sections: expected a non-empty list"),
        (
            "[pages.home.watch]\nsections=[{generator='trending'}]",
            r"pages\.home: unknown key\(s\) \['watch'\]",
        ),
        ("[pages.landing.tv]\nsections=[{generator='trending'}]", r"pages: unknown key\(s\) \['landing'\]"),
        (
            "[pages.home.tv]\nsections=[{generator='genre', params={genre=3}}]",
            r"sections\[0\]\.params: parameter 'genre' must be a str",
        ),
        (
            "[pages.home.tv]\nsections=[{generator='collection'}]",
            r"sections\[0\]\.params: a collection section names its collection by 'slug' or by 'id'",
        ),
        (
            "[pages.home.tv]\nsections=[{generator='trending', budget_ms=-1}]",
            r"budget_ms: expected a number above 0",
        ),
        (
            "[defaults]\nrow_length = 2.5\n[pages.home.tv]\nsections=[{generator='trending'}]",
            r"defaults\.row_length",
        ),
        ("[pages.home.tv\n", r"not valid TOML"),
        ("[defaults]\n", r"no page layouts are configured"),
    ],
)
def test_mistakes_are_refused_naming_the_place(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Layouts.parse(text, GENERATORS)


def test_a_missing_file_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="cannot read the layout file"):
        Layouts.load(tmp_path / "nope.toml")


# --- editors' layouts (records.Layout, ingested from the CMS) --------------------------------------------


def _editors(sections: str, revision: int = 1) -> records.Layout:
    return records.Layout(7, "home", "web", "home/web", sections, revision)


EDITORS = json.dumps(
    [
        {"generator": "collection", "params": {"id": 1}, "length": 3},
        {"generator": "trending", "title": "Hot", "length": 5},
    ]
)


def test_an_editorial_builder_builds_the_editors_sections_in_the_configured_frame() -> None:
    view = state(layouts=(_editors(EDITORS),))
    fragment = PageBuilder(Layouts.load(generators=GENERATORS), editorial=True).build(view, "home", Visitor())
    assert [(s.key, s.title, len(s.items)) for s in fragment.sections] == [
        ("collection(id=1)", "Award winners", 3),
        ("trending", "Hot", 5),
    ]
    assert fragment.layout == Layouts.load().get("home", "web").kind  # the kind stays the configured one
    plain = PageBuilder(Layouts.load(generators=GENERATORS)).build(view, "home", Visitor())
    assert [s.key for s in plain.sections][:2] != ["collection(id=1)", "trending"]  # not asked: configured


@pytest.mark.parametrize(
    ("sections", "why"),
    [
        ("[", "not JSON"),
        ("[]", "expected a non-empty list of sections"),
        ('[{"generator": "horoscope"}]', "unknown generator 'horoscope'"),
        ('[{"generator": "collection", "params": {"id": 1, "slug": "x"}}]', "by 'slug' or by 'id'"),
    ],
)
def test_a_broken_editors_layout_is_logged_and_the_configured_one_served(
    sections: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    layouts = Layouts.load(generators=GENERATORS)
    with pytest.raises(ConfigError, match=why):
        layouts.editorial(_editors(sections), GENERATORS)
    fragment = PageBuilder(layouts, editorial=True).build(
        state(layouts=(_editors(sections),)), "home", Visitor()
    )
    configured = PageBuilder(layouts).build(state(), "home", Visitor())
    assert [s.key for s in fragment.sections] == [s.key for s in configured.sections]
    assert "the CMS layout 7 (home/web)" in caplog.text and why.split("'")[0] in caplog.text
