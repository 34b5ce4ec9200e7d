"""A small, hand-made content set for the ingestion and editor tests: three titles with their people
and artwork, and helpers to save stories."""

from __future__ import annotations

from dataclasses import dataclass

from marrow.cms import CMS, Asset, Person, Story, TextBlock, Title, TitleCard, Window
from marrow.cms.events import ContentEvent
from marrow.ingest import Ingestion
from marrow.ingest.testing import StateWriter

NOW = 1_800_000_000  # the tests' clock (2027-01-15)
EVERYWHERE = ["US", "GB", "DE", "FR", "JP", "BR", "IN"]


def title(name: str, slug: str, cast: list[int], artwork: int, **kw: object) -> Title:
    fields: dict[str, object] = {
        "synopsis": f"All about {name}.",
        "year": 2020,
        "maturity": 13,
        "runtime": 50,
        "genres": ["Drama"],
        "availability": [Window(countries=EVERYWHERE, start=NOW - 86_400)],
        "popularity": 500,
        **kw,
    }
    return Title(name=name, slug=slug, cast=cast, artwork=artwork, **fields)  # type: ignore[arg-type]


def seed(cms: CMS) -> None:
    """People 1-3, image assets 1-4 and a video 5 (poster 4), titles 10 ("Dark"), 11 ("Ozark") and
    12 ("Wednesday", comedy), all published."""
    docs = [
        ("person", 1, Person(name="Louis Hofmann")),
        ("person", 2, Person(name="Julia Garner")),
        ("person", 3, Person(name="Jenna Ortega")),
        ("asset", 1, Asset(path="titles/10/boxart.jpg", width=1920, height=1080, alt="Dark")),
        ("asset", 2, Asset(path="titles/11/boxart.jpg", width=1920, height=1080, alt="Ozark")),
        ("asset", 3, Asset(path="titles/12/boxart.jpg", width=1920, height=1080, alt="Wednesday")),
        ("asset", 4, Asset(path="stories/hero.jpg", width=2400, height=1350, alt="A hero")),
        (
            "asset",
            5,
            Asset(path="videos/trailer.mp4", width=1920, height=1080, kind="video", duration=90, poster=4),
        ),
        ("title", 10, title("Dark", "dark", [1], 1, kind="show", genres=["Thriller", "Sci-Fi"])),
        ("title", 11, title("Ozark", "ozark", [2], 2, kind="show", genres=["Crime", "Drama"])),
        ("title", 12, title("Wednesday", "wednesday", [3], 3, genres=["Comedy"])),
    ]
    cms.import_documents(docs, editor="seed")


def article(headline: str = "Why Dark works", **kw: object) -> Story:
    fields: dict[str, object] = {
        "slug": "why-dark-works",
        "template": "article",
        "hero": 4,
        "blocks": [TextBlock(text="The ending of {{title:10}} is *brilliant*."), TitleCard(title=10)],
        **kw,
    }
    return Story(headline=headline, **fields)  # type: ignore[arg-type]


@dataclass
class Setup:
    cms: CMS
    live: StateWriter
    preview: StateWriter
    ingestion: Ingestion

    def ingest(self, *events: ContentEvent) -> object:
        return self.ingestion.ingest(list(events))


def setup(cms: CMS) -> Setup:
    """The content seeded and ingested into both channels."""
    seed(cms)
    live, preview = StateWriter(), StateWriter()
    ingestion = Ingestion(cms, {"live": live, "preview": preview}, clock=lambda: NOW)
    ingestion.ingest_pending().raise_for_errors()
    return Setup(cms, live, preview, ingestion)
