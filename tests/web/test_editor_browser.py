"""The editor in a real browser: the machine's Chromium, driven by Playwright, signs in, changes a
headline, saves, and sees it in the preview; then breaks a reference, sees the error next to the
field, and the preview keeps the last good version; and lays out the home page: a row renamed and moved
up shows so in the preview."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest
from editor_site import PASSWORD, build

SCREENSHOT = Path("/tmp/editor.png")

pytestmark = browser.MARKS

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The editor over the test content, served from a thread on a free loopback port."""
    with browser.serve(build(tmp_path_factory.mktemp("editor")).app) as url:
        yield url


def test_edit_save_and_preview(base_url: str) -> None:
    expect = playwright.expect
    with playwright.sync_playwright() as p:
        chromium = browser.launch(p)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(10_000)

            page.goto(f"{base_url}/stories/1")  # anonymous: to the sign-in form, and back afterwards
            expect(page.locator("h1")).to_have_text("Sign in")
            page.get_by_label("Username").fill("ana")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()

            expect(page).to_have_url(f"{base_url}/stories/1")
            preview = page.frame_locator("iframe[title=preview]")
            expect(preview.locator("article.story h1")).to_have_text("Why Dark works")

            page.get_by_role("link", name="Stories").click()
            page.get_by_role("textbox", name="Search").fill("dark")
            page.get_by_role("button", name="Search").click()
            page.get_by_role("link", name="Why Dark works").click()

            page.get_by_label("Headline").fill("Why Dark still works")
            page.get_by_role("button", name="Save draft").click()
            expect(page).to_have_url(f"{base_url}/stories/1?offset=2")
            expect(preview.locator("article.story h1")).to_have_text("Why Dark still works")
            expect(preview.locator("aside.title-card strong")).to_have_text("Dark")
            page.screenshot(path=str(SCREENSHOT))

            card = page.get_by_role("group", name="block 2")
            card.get_by_label("Title id").fill("999")
            page.get_by_label("Headline").fill("A broken story")
            page.get_by_role("button", name="Save draft").click()
            expect(card.locator(".field-error")).to_have_text("title 999 does not exist")
            expect(page.locator(".notice")).to_contain_text(
                "Saved as revision 3, but not published to preview"
            )
            expect(preview.locator("article.story h1")).to_have_text(
                "Why Dark still works"
            )  # the last good version
        finally:
            chromium.close()


def test_lay_out_the_home_page_and_preview_it(tmp_path: Path) -> None:
    from marrow.cms import PageLayout, SectionSpec

    site = build(tmp_path)
    home = [SectionSpec(kind="trending", label="Trending now", limit=1), SectionSpec(kind="new", limit=1)]
    site.cms.save(
        "layout", None, PageLayout(page="home", device="web", sections=home), base=None, editor="ana"
    )
    site.ingestion.ingest_pending().raise_for_errors()
    expect = playwright.expect
    with browser.serve(site.app) as url, playwright.sync_playwright() as p:
        chromium = browser.launch(p)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(10_000)
            page.goto(f"{url}/layouts")
            page.get_by_label("Username").fill("ana")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="home · web").click()
            preview = page.frame_locator("iframe[title=preview]")
            expect(preview.locator("h2").first).to_have_text("Trending now")

            page.get_by_role("row", name="section 2").get_by_label("heading").fill("Just in")
            page.get_by_role("row", name="section 2").get_by_label("up").check()
            page.get_by_role("button", name="Save draft").click()
            expect(page).to_have_url(re.compile(r"/layouts/1\?offset=\d+$"))
            expect(preview.locator("h2").first).to_have_text("Just in")  # moved up, renamed
            expect(preview.locator("h2").nth(1)).to_have_text("Trending now")
        finally:
            chromium.close()
