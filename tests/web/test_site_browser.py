"""The visitor site in a real browser: home rows, more rows by the cursor, a title, a play that
shows up in continue watching, search with autocomplete."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "pages"))
from pages_dataset import state, title

from marrow.pages import GENERATORS, InMemoryEngagement, Layouts, PageBuilder
from marrow.pages.views import StaticViews
from marrow.web.site import Profile, SiteSettings, site_app

pytestmark = browser.MARKS
playwright = pytest.importorskip("playwright.sync_api")
SCREENSHOT = Path("/tmp/site.png")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    builder = PageBuilder(Layouts.load(generators=GENERATORS), engagement=InMemoryEngagement())
    settings = SiteSettings(profiles={7: Profile("Ana", "DE", 16)})
    with browser.serve(site_app(StaticViews(state(2000, 50)), builder, settings)) as url:
        yield url


def test_browse_the_site_as_a_visitor(base_url: str) -> None:
    expect = playwright.expect
    with playwright.sync_playwright() as p:
        page = browser.launch(p).new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(10_000)
        page.goto(f"{base_url}/?device=web&profile=none")
        rows = page.locator("section.row")
        expect(rows.first.locator("h2")).to_contain_text("Top 10 in US")
        before = rows.count()
        page.get_by_role("link", name="More rows").click()  # fetched and appended, no reload
        expect(rows).not_to_have_count(before)
        assert page.url.endswith("profile=none")

        page.locator("select[name=profile]").select_option("7")
        page.get_by_role("button", name="Apply").click()
        first = page.locator("section.row .card a").first
        name = first.locator(".name").inner_text()
        first.click()
        expect(page.locator("h1")).to_have_text(name)
        page.get_by_role("button", name="Play").click()
        page.get_by_role("link", name="Marrow").click()
        continue_row = page.locator("section.row[data-section=continue_watching]")
        expect(continue_row.locator(".name").first).to_have_text(name)

        box = page.get_by_label("Search")
        box.fill("story 1")
        expect(page.locator("#suggestions option").first).to_have_attribute("value", re.compile("^Story 1"))
        box.press("Enter")
        expect(page).to_have_url(re.compile(r"/search\?q=story\+1$"))
        expect(page.locator("section.row.stories .card").first).to_contain_text("Story 1:")
        page.screenshot(path=str(SCREENSHOT), full_page=False)
        assert title(1).name  # the dataset is the test's: names come from it
