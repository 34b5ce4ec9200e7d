"""The explorer in a real browser: the machine's Chromium, driven by Playwright, clicks through it as a
user would — overview, a type, a record, a reference, a prefix query, the history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest
from explorer_dataset import build

from marrow.web.explorer import explorer_app

SCREENSHOT = Path("/tmp/explorer.png")

pytestmark = browser.MARKS

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The explorer over the test catalogue, served from a thread on a free loopback port."""
    catalogue = build()
    with browser.serve(explorer_app(catalogue.consumer, catalogue.history)) as url:
        yield url


def test_click_through_the_explorer(base_url: str) -> None:
    expect = playwright.expect
    with playwright.sync_playwright() as p:
        chromium = browser.launch(p)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(10_000)

            page.goto(f"{base_url}/")
            expect(page.locator("h1")).to_have_text("Version 3")
            page.get_by_role("link", name="Title", exact=True).click()

            expect(page).to_have_url(f"{base_url}/types/Title")
            expect(page.locator(".pager")).to_contain_text("page 1 of 3")
            expect(page.locator("table.records tbody tr")).to_have_count(50)
            page.screenshot(path=str(SCREENSHOT))

            row = page.locator("table.records tbody tr", has_text="The Dark Knight")
            row.locator("td.num a").click()
            expect(page.locator("h1")).to_have_text("Title 3 · The Dark Knight")
            director = page.locator("tr", has_text="director").locator("a.ref")
            name = director.inner_text()
            director.click()

            expect(page.locator("h1")).to_have_text(name)
            expect(page.locator("table.record")).to_contain_text("name")
            page.get_by_role("link", name="Title.director").click()
            expect(page.locator(".meta")).to_contain_text("where director holds")

            form = page.get_by_role("form", name="prefix")
            form.get_by_label("prefix").fill("zeb")
            form.get_by_role("button", name="Complete").click()
            expect(page).to_have_url(re.compile(r"/types/Title/complete\?field=title&prefix=zeb$"))
            expect(page.locator("table.records tbody tr")).to_have_count(1)
            expect(page.locator("table.records")).to_contain_text("Zebra Crossing")

            page.get_by_role("link", name="History").click()
            expect(page.locator("h1")).to_have_text("History")
            entry = page.locator("section.entry", has=page.locator("h2", has_text="Version 1 → 2"))
            expect(entry.locator(".keys")).to_contain_text("added 500")
            entry.get_by_role("link", name="500", exact=True).click()
            expect(page.locator("h1")).to_have_text("Title 500 · Zebra Crossing")
        finally:
            chromium.close()
