"""Render-ready records: the read model that ingestion writes and page construction reads.

These are the types of the content namespace in the store. A render-ready record needs no further
lookup to be rendered: placeholders are resolved (a story's title cards carry the title's name, a
cast is a list of names), images are CDN URLs per device, and text is final.

Records of different types refer to each other **by primary key** (``Story.titles`` holds title
ids), never by store reference: a record can then be replaced on its own, in a bulk update or an
incremental cycle, without rewriting the records that mention it. Page construction looks the ids
up in bulk (``get_many``) in the same version it read the referrer from.

Invariants ingestion keeps: every id in ``Story.titles`` and ``Collection.titles`` names a Title
present in the same bulk update or already in the store; ``slug`` is unique per type; ``artwork`` and
``hero`` have a URL for every device in :data:`DEVICES`.
"""

from __future__ import annotations

from dataclasses import dataclass

from marrow.store import Int

#: Devices a page is built for; each has its own artwork sizes and row lengths.
DEVICES = ("tv", "web", "mobile")


@dataclass(frozen=True, slots=True)
class Title:
    """A film or series as visitors see it."""

    __primary_key__ = "id"
    id: int
    slug: str
    name: str
    kind: str  # "movie" or "show"
    synopsis: str
    year: Int
    maturity: Int  # minimum age: 0, 7, 13, 16 or 18
    runtime: Int  # minutes (for a show, of an episode)
    genres: list[str]  # most specific first
    cast: list[str]  # names, in billing order
    countries: frozenset[str]  # ISO 3166-1 alpha-2 codes where it is available now
    popularity: Int  # trending score, 0 (cold) to 1,000,000
    added: int  # when it became available, seconds since the epoch (new releases)
    artwork: dict[str, str]  # device → CDN URL of the box art in that device's size


@dataclass(frozen=True, slots=True)
class Story:
    """An editorial article (Tudum's stories), published and render-ready."""

    __primary_key__ = "id"
    id: int
    slug: str
    headline: str
    summary: str
    body: str  # JSON list of resolved blocks: {"kind": "text"|"image"|"title"|"video", ...}
    hero: dict[str, str]  # device → CDN URL of the hero image
    titles: list[int]  # ids of the titles the story features, in order of appearance
    genres: list[str]
    published: int  # seconds since the epoch
    revision: int  # the CMS revision this record was ingested from (preview checks it)


@dataclass(frozen=True, slots=True)
class Collection:
    """An editorial row of titles ("Award winners", "Cosy crime"), curated in the CMS."""

    __primary_key__ = "id"
    id: int
    slug: str
    name: str
    titles: list[int]  # ids, in the editor's order
    revision: int


@dataclass(frozen=True, slots=True)
class Layout:
    """An editor's layout of one page type on one device (the CMS's page layout): the sections page
    construction builds there instead of the configured ones (``marrow.pages.layouts``), when a site
    reads editorial layouts."""

    __primary_key__ = "id"
    id: int
    page: str  # "home", "title", "story" or "genre" (search pages show results, not an editor's rows)
    device: str  # one of DEVICES
    key: str  # "page/device", the index page construction finds a layout by
    sections: str  # JSON list of {"generator", "title"?, "params"?, "length"?}, in page order
    revision: int


#: Every render-ready type, in the order a bulk update writes them.
TYPES = (Title, Story, Collection, Layout)
