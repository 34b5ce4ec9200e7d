"""Step 5, render-ready records: a validated, resolved document as the record page construction reads
(:mod:`marrow.records`). Only titles, stories and collections have records; people, assets and
layouts are read through them (names, URLs) or as configuration."""

from __future__ import annotations

from typing import Any

import msgspec

from marrow import records
from marrow.cms.model import Collection, Document, Story, Title
from marrow.ingest.rules import availability, featured_titles

__all__ = ["RECORD_TYPES", "render"]

#: CMS kind → the render-ready type its documents become
RECORD_TYPES: dict[str, str] = {"title": "Title", "story": "Story", "collection": "Collection"}
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
    return None
