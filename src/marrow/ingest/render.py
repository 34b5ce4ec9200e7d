"""Step 5, render-ready records: a validated, resolved document as the record page construction reads
(:mod:`marrow.records`). Titles, stories, collections and page layouts have records; people and assets
are read through them (names, URLs)."""

from __future__ import annotations

from typing import Any

import msgspec

from marrow import records
from marrow.cms.model import Collection, Document, PageLayout, SectionSpec, Story, Title
from marrow.ingest.rules import availability, featured_titles

__all__ = ["RECORD_TYPES", "render"]

#: CMS kind → the render-ready type its documents become
RECORD_TYPES: dict[str, str] = {
    "title": "Title",
    "story": "Story",
    "collection": "Collection",
    "layout": "Layout",
}
#: a CMS section kind → the page construction generator that fills it (the same name where absent)
GENERATOR_OF_KIND = {"new": "new_releases"}
_JSON = msgspec.json.Encoder()


def render(
    kind: str, id: int, revision: int, doc: Document, values: dict[str, Any], published: float, now: float
) -> Any:
    """The record of ``doc`` (``values`` from the resolve step), or None for a kind without records.

    ``published`` is when a story was first published (for a draft in preview: when it was saved);
    ``now`` decides which availability windows are open.
    """
    if isinstance(doc, Title):
        open_now = availability(doc, now)
        return records.Title(
            id=id,
            slug=doc.slug,
            name=doc.name,
            kind=doc.kind,
            synopsis=doc.synopsis,
            year=doc.year,
            maturity=doc.maturity,
            runtime=doc.runtime,
            genres=list(doc.genres),
            cast=list(values["cast"]),
            countries=open_now.countries,
            popularity=doc.popularity,
            added=open_now.added,
            artwork=dict(values["artwork"]),
        )
    if isinstance(doc, Story):
        return records.Story(
            id=id,
            slug=doc.slug,
            headline=doc.headline,
            summary=doc.summary,
            body=_JSON.encode(values["blocks"]).decode(),
            hero=dict(values["hero"]),
            titles=featured_titles(doc),
            genres=list(doc.genres),
            published=int(published),
            revision=revision,
        )
    if isinstance(doc, Collection):
        return records.Collection(
            id=id, slug=doc.slug, name=doc.name, titles=list(doc.titles), revision=revision
        )
    if isinstance(doc, PageLayout):
        sections = _JSON.encode([_section(s) for s in doc.sections]).decode()
        key = f"{doc.page}/{doc.device}"
        return records.Layout(id, doc.page, doc.device, key, sections, revision)
    return None


def _section(spec: SectionSpec) -> dict[str, Any]:
    """A CMS section as page construction's section spec (``marrow.pages.layouts``)."""
    out: dict[str, Any] = {"generator": GENERATOR_OF_KIND.get(spec.kind, spec.kind), "length": spec.limit}
    if spec.label:
        out["title"] = spec.label
    if spec.kind == "collection":
        out["params"] = {"id": spec.collection}
    elif spec.kind == "genre" and spec.genre is not None:
        out["params"] = {"genre": spec.genre}
    return out
