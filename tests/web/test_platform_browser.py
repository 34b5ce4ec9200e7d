"""The platform as ``make demo`` runs it, in a real browser: an editor signs in, changes a story's
headline, saves and sees it in the preview at once (read from the preview namespace at the save's
offset), publishes, and a visitor sees it on the site; a visitor's play shows in continue watching."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import browser
import pytest
from rich.console import Console

from marrow.demo import _open, _serving, _sockets
from marrow.platform import PlatformSettings

pytestmark = browser.MARKS
playwright = pytest.importorskip("playwright.sync_api")
SCREENSHOT = Path("/tmp/platform-editor.png")


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    sockets = _sockets("127.0.0.1", 0)
    root = tmp_path_factory.mktemp("platform")
    settings = PlatformSettings(root=str(root), port=sockets["site"].getsockname()[1], simulate_every=0)
    platform = _open(settings, titles=300, stories=40, console=Console(quiet=True))
    try:
        with _serving(platform.apps(), sockets) as served:
            yield served
    finally:
        platform.close()


def test_an_editor_saves_previews_and_publishes_and_a_visitor_sees_it(urls: dict[str, str]) -> None:
    expect = playwright.expect
    with playwright.sync_playwright() as p:
        chromium = browser.launch(p)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(15_000)
            page.goto(f"{urls['editor']}/")
            page.get_by_label("Username").fill("editor")
            page.get_by_label("Password").fill("marrow-demo")
            page.get_by_role("button", name="Sign in").click()
            page.locator("table a").first.click()

            preview = page.frame_locator("iframe[title=preview]")
            page.get_by_label("Headline").fill("Seen in the preview at once")
            page.get_by_role("button", name="Save draft").click()
            expect(page).to_have_url(re.compile(r"/stories/\d+\?offset=\d+$"))
            expect(preview.locator("article.story h1")).to_have_text("Seen in the preview at once")
            page.screenshot(path=str(SCREENSHOT))
            slug = page.get_by_label("Slug").input_value()

            page.get_by_role("button", name=re.compile(r"^Publish revision")).click()
            visitor = chromium.new_page()
            visitor.goto(f"{urls['site']}/stories/{slug}")
            expect(visitor.locator("article.story h1")).to_have_text("Seen in the preview at once")

            visitor.goto(f"{urls['site']}/?profile=2&device=web")
            card = visitor.locator("section.row[data-section=trending] .card a").first
            name = card.locator(".name").inner_text()
            card.click()
            visitor.get_by_role("button", name="Play").click()
            continuing = visitor.locator("section.row[data-section=continue_watching] .name").first
            visitor.get_by_role("link", name="Marrow").click()
            expect(continuing).to_have_text(name)
        finally:
            chromium.close()
