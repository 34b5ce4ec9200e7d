"""The pipeline's steps on their own: rich text, CDN URLs, availability, the test writer, the worker's
retries, and the whole sample through the bulk path."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cms_content import NOW, article, seed
from marrow import records
from marrow.cms import CMS, Asset, InProcessBus, Relay, Title, Window
from marrow.cms import sample as cms_sample
from marrow.errors import MarrowError, RecordError
from marrow.ingest import Cdn, Ingestion, Worker, availability, rich_text
from marrow.ingest.testing import StateWriter


def no_placeholders(m: re.Match[str]) -> str:
    raise LookupError(f"unexpected {m[0]}")


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(blacklist_characters="*[{\r", blacklist_categories=("Cs",))))
def test_rich_text_shows_exactly_what_was_typed(text: str) -> None:
    """Whatever an editor types (without markup), the HTML shows exactly that text: nothing is
    interpreted as a tag, nothing is lost but the blank lines between paragraphs."""
    markup, problems = rich_text(text, no_placeholders)
    assert problems == []
    assert "<" not in re.sub(r"</?p>|<br>", "", markup)
    paragraphs = re.findall(r"<p>(.*?)</p>", markup, re.S)
    shown = [html.unescape(p.replace("<br>", "\n")) for p in paragraphs]
    assert shown == re.split(r"\n\s*\n", text.strip())


def test_rich_text_markup_and_links() -> None:
    markup, problems = rich_text(
        "**Bold** and *soft* <script>x</script>\n"
        "[ok](https://netflix.com/a?b=1&c=2) [bad](javascript:alert)\n\nTwo",
        no_placeholders,
    )
    assert markup == (
        "<p><strong>Bold</strong> and <em>soft</em> &lt;script&gt;x&lt;/script&gt;<br>"
        '<a href="https://netflix.com/a?b=1&amp;c=2">ok</a> bad</p><p>Two</p>'
    )
    assert problems == ["link 'javascript:alert': use an http(s) URL or a path on the site"]


def test_cdn_urls_per_device() -> None:
    asset = Asset(path="a/b.jpg", width=10, height=10)
    urls = Cdn("https://img.example/").image(asset, "hero")
    assert urls == {
        "tv": "https://img.example/a/b.jpg?w=1920&h=1080&fit=crop",
        "web": "https://img.example/a/b.jpg?w=1600&h=900&fit=crop",
        "mobile": "https://img.example/a/b.jpg?w=750&h=422&fit=crop",
    }
    assert set(urls) == set(records.DEVICES)


def test_availability_is_the_union_of_open_windows() -> None:
    t = Title(
        name="x",
        slug="x",
        availability=[
            Window(countries=["US"], start=100, end=200),
            Window(countries=["GB", "US"], start=150),
            Window(countries=["JP"], start=300),
        ],
    )
    assert availability(t, 99).countries == frozenset()
    assert (availability(t, 160).countries, availability(t, 160).added) == (frozenset({"US", "GB"}), 100)
    assert (availability(t, 250).countries, availability(t, 250).added) == (frozenset({"US", "GB"}), 150)
    assert availability(t, 300).countries == frozenset({"US", "GB", "JP"})


def title_record(id: int, name: str) -> records.Title:
    return records.Title(
        id, name.lower(), name, "movie", "", 2020, 0, 90, [], [], frozenset({"US"}), 1, 0, {"tv": "u"}
    )


def test_the_state_writer_applies_bulk_updates_all_or_nothing() -> None:
    writer = StateWriter()
    first = writer.bulk_update([title_record(1, "A"), title_record(2, "B")])
    second = writer.bulk_update([title_record(2, "B2")], deletes=[("Title", 1)])
    assert (first, second) == (1, 2)
    state = writer.read(second)
    assert state["Title"].get(1) is None and state["Title"].get(2).name == "B2"
    bad = records.Title(4, "d", "D", "movie", "", "1999", 0, 90, [], [], frozenset(), 1, 0, {})  # type: ignore[arg-type]
    with pytest.raises(RecordError, match=r"Title\.year"):
        writer.bulk_update([title_record(3, "C"), bad])
    assert writer.offset == 2 and writer.read()["Title"].get(3) is None
    with pytest.raises(MarrowError, match="offset 9 has not been written"):
        writer.read(9)


class FlakyWriter(StateWriter):
    """A writer that is down for its first ``failures`` bulk updates."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures

    def bulk_update(self, upserts: Sequence[Any], deletes: Sequence[tuple[str, Any]] = ()) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the writer is down")
        return super().bulk_update(upserts, deletes)


def test_the_worker_retries_until_ingested(cms_store: CMS) -> None:
    seed(cms_store)
    writer = FlakyWriter(failures=2)
    bus = InProcessBus()
    worker = Worker(bus, Ingestion(cms_store, {"preview": writer}, clock=lambda: NOW), first_delay=0.01)
    cms_store.save("story", None, article(), base=None, editor="ana")
    Relay(cms_store.outbox, bus).run_once()
    reports = []
    for _ in range(20):  # retried batches may come back split (each delivery has its own due time)
        reports.append(worker.run_once(timeout=2))
        if reports[-1] is not None and bus.wait_settled(timeout=0.1):
            break
    assert reports[:2] == [None, None] and worker.failures == 2  # the writer was down twice
    done = [r for r in reports if r is not None]
    assert done and all(r.errors == [] for r in done)
    assert writer.read()["Story"].get(1).headline == "Why Dark works"
    assert bus.wait_settled(timeout=1)
    assert {e.action for e in cms_store.outbox.unsettled()} == {"published"}  # only live, which has no writer


def test_the_worker_thread_drains_the_bus(cms_store: CMS) -> None:
    seed(cms_store)
    writer, bus = StateWriter(), InProcessBus()
    relay = Relay(cms_store.outbox, bus, interval=0.05)
    worker = Worker(bus, Ingestion(cms_store, {"preview": writer, "live": StateWriter()}, clock=lambda: NOW))
    relay.start()
    worker.start()
    try:
        cms_store.save("story", None, article(), base=None, editor="ana")
        relay.notify()
        assert bus.wait_settled(timeout=10)
    finally:
        worker.close()
        relay.close()
    assert cms_store.outbox.unsettled() == []
    assert writer.read()["Story"].get(1) is not None


@pytest.mark.slow
def test_the_sample_ingests_without_errors_in_one_bulk_update_per_channel(cms_store: CMS) -> None:
    sample = cms_sample.generate(titles=400, stories=150, people=600)
    dates = {("story", i): float(t) for i, t in sample.published.items()}
    cms_store.import_documents(sample.documents(), editor="import", published_at=dates)
    live, preview = StateWriter(), StateWriter()
    report = Ingestion(cms_store, {"live": live, "preview": preview}).ingest_pending()
    assert report.errors == []
    records = 400 + 150 + len(sample.collections) + len(sample.layouts)
    assert live.updates == preview.updates == [(records, 0)]
    state = live.read()
    assert len(state["Title"]) == 400 and len(state["Story"]) == 150
    assert len(state["Layout"]) == len(sample.layouts) == 12  # home, genre, title, story × 3 devices
    story = state["Story"].get(1)
    assert story.published == sample.published[1] and story.titles
    assert all(state["Title"].get(t) is not None for t in story.titles)
