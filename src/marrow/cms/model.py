"""The editorial content model: what editors write in the CMS, before ingestion resolves it.

Content is a set of **documents**, each of one *kind* and named by ``(kind, id)``:

* ``title``      a film or series of the catalogue, with availability windows per country;
* ``person``     someone in a cast;
* ``asset``      an image or video at the origin, from which the CDN cuts each device's size;
* ``story``      an editorial article: headline, slug, a hero asset, and blocks (rich text, image,
  title card, video embed) whose placeholders refer to titles and assets by id;
* ``collection`` an editorial row of titles;
* ``layout``     a page layout: per page type and device, the sections a page has, in order.

Documents refer to each other by id, never by copy: a story's title card holds the title's id, and
ingestion resolves it to the title's name, synopsis and cast when it writes the render-ready record.

The structs check a document's *shape* (types, known fields, known block kinds) when it is decoded,
so the CMS never stores a document it cannot read back. Whether it is *complete* (a headline, a
resolvable reference, a known template) is ingestion's business: a draft may be unfinished.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

__all__ = [
    "DOCUMENTS",
    "KINDS",
    "PLACEHOLDER",
    "Asset",
    "Block",
    "Collection",
    "Document",
    "ImageBlock",
    "PageLayout",
    "Person",
    "SectionSpec",
    "Story",
    "TextBlock",
    "Title",
    "TitleCard",
    "VideoEmbed",
    "Window",
    "label_of",
    "references",
    "slug_of",
]


#: A placeholder in rich text: ``{{title:42}}`` (the title's name, linked) or ``{{asset:7}}`` (a link
#: to the picture in the web size). Ingestion resolves them; anything else in braces stays text.
PLACEHOLDER = re.compile(r"\{\{(?P<kind>title|asset):(?P<id>\d{1,18})\}\}")


class _Doc(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every document: keyword-only fields, unknown fields refused. (Required fields come
    first in each subclass: ``kw_only`` covers only the fields declared where it is given.)"""


class Window(_Doc):
    """A licence: the countries (ISO 3166-1 alpha-2) where a title may be shown from ``start`` until
    ``end`` (seconds since the epoch; ``None`` = open-ended)."""

    countries: list[str]
    start: int
    end: int | None = None


class Title(_Doc):
    name: str
    slug: str
    kind: Literal["movie", "show"] = "movie"
    synopsis: str = ""
    year: int = 0
    maturity: int = 0  # minimum age: 0, 7, 13, 16 or 18
    runtime: int = 0  # minutes (of an episode, for a show)
    genres: list[str] = []
    cast: list[int] = []  # person ids, in billing order
    artwork: int | None = None  # asset id of the box art
    availability: list[Window] = []
    popularity: int = 0  # trending score, 0 to 1,000,000 (from the analytics feed)


class Person(_Doc):
    name: str


class Asset(_Doc):
    """A picture or video at the origin; the CDN serves it resized (ingestion builds those URLs)."""

    path: str  # under the origin, e.g. "titles/100007/boxart.jpg"
    width: int
    height: int
    kind: Literal["image", "video"] = "image"
    alt: str = ""
    duration: int | None = None  # seconds, for a video
    poster: int | None = None  # asset id of a video's still


# --- stories: blocks, tagged by "kind" ---------------------------------------------------------------


class TextBlock(_Doc, tag="text", tag_field="kind"):
    """Rich text: paragraphs split by a blank line, ``**strong**``, ``*emphasis*``, ``[label](url)``,
    and placeholders ``{{title:ID}}`` (the title's name, linked) resolved at ingestion."""

    text: str


class ImageBlock(_Doc, tag="image", tag_field="kind"):
    asset: int | None = None
    caption: str = ""


class TitleCard(_Doc, tag="title", tag_field="kind"):
    title: int | None = None


class VideoEmbed(_Doc, tag="video", tag_field="kind"):
    asset: int | None = None
    caption: str = ""


Block = TextBlock | ImageBlock | TitleCard | VideoEmbed


class Story(_Doc):
    headline: str
    slug: str
    template: str = "article"  # see marrow.ingest.templates
    summary: str = ""
    hero: int | None = None  # asset id
    genres: list[str] = []
    blocks: list[Block] = []


class Collection(_Doc):
    name: str
    slug: str
    titles: list[int] = []  # title ids, in the editor's order


class SectionSpec(_Doc):
    """One section of a page layout. ``kind`` names the generator page construction runs:
    ``collection`` (needs ``collection``), ``genre`` (needs ``genre``, except on a genre page),
    ``trending``, ``top10``, ``new``, ``because_you_watched``, ``continue_watching``, ``my_list``,
    ``stories``. ``label`` (when not empty) is the row's heading; ``limit`` its length."""

    kind: str
    label: str = ""
    collection: int | None = None
    genre: str | None = None
    limit: int = 20  # titles in the row


class PageLayout(_Doc):
    """Editorial configuration: the sections of one page type on one device, in order. Ingested into a
    ``marrow.records.Layout``; a site that reads editorial layouts builds the page with these sections."""

    page: str  # "home", "genre", "title" or "story"
    device: str  # one of marrow.records.DEVICES
    sections: list[SectionSpec] = []


Document = Title | Person | Asset | Story | Collection | PageLayout

#: kind → the struct of its documents
KINDS: dict[str, type[Document]] = {
    "title": Title,
    "person": Person,
    "asset": Asset,
    "story": Story,
    "collection": Collection,
    "layout": PageLayout,
}
#: struct → its kind
DOCUMENTS: dict[type[Document], str] = {v: k for k, v in KINDS.items()}


def slug_of(doc: Document) -> str | None:
    """The slug that names ``doc`` in URLs (unique per kind), if its kind has one."""
    return getattr(doc, "slug", None)


def label_of(doc: Document) -> str:
    """What lists and searches show for ``doc``: a headline, a name, a path."""
    if isinstance(doc, Story):
        return doc.headline
    if isinstance(doc, Asset):
        return doc.path
    if isinstance(doc, PageLayout):
        return f"{doc.page} · {doc.device}"
    return doc.name


def references(doc: Document) -> list[tuple[str, int, str]]:
    """Every ``(kind, id, field path)`` that ``doc`` refers to, in document order.

    Ingestion resolves exactly these, text placeholders (:data:`PLACEHOLDER`) included.
    """
    out: list[tuple[str, int, str]] = []
    if isinstance(doc, Title):
        out += [("person", p, f"cast[{i}]") for i, p in enumerate(doc.cast)]
        if doc.artwork is not None:
            out.append(("asset", doc.artwork, "artwork"))
    elif isinstance(doc, Asset):
        if doc.poster is not None:
            out.append(("asset", doc.poster, "poster"))
    elif isinstance(doc, Story):
        if doc.hero is not None:
            out.append(("asset", doc.hero, "hero"))
        for i, b in enumerate(doc.blocks):
            if isinstance(b, TextBlock):
                out += [(m["kind"], int(m["id"]), f"blocks[{i}].text") for m in PLACEHOLDER.finditer(b.text)]
            elif isinstance(b, TitleCard) and b.title is not None:
                out.append(("title", b.title, f"blocks[{i}].title"))
            elif isinstance(b, ImageBlock | VideoEmbed) and b.asset is not None:
                out.append(("asset", b.asset, f"blocks[{i}].asset"))
    elif isinstance(doc, Collection):
        out += [("title", t, f"titles[{i}]") for i, t in enumerate(doc.titles)]
    elif isinstance(doc, PageLayout):
        out += [
            ("collection", s.collection, f"sections[{i}].collection")
            for i, s in enumerate(doc.sections)
            if s.collection is not None
        ]
    return out
