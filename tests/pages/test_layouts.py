"""Layouts load from configuration and refuse mistakes, naming where they are."""

from __future__ import annotations

import pytest

from marrow.errors import ConfigError
from marrow.pages import GENERATORS, Layouts


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
            r"sections\[0\]\.params: parameter 'slug' is required",
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
