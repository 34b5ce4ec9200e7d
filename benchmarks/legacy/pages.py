"""Page construction on the legacy read path: Marrow's layouts and assembly, the data from keys.

:class:`LegacyPageBuilder` builds the same fragments as :class:`marrow.pages.PageBuilder` — the same
layout file, the same sections in the same order, rows cut to the device's length, titles deduplicated
down the page and across fragments (``take``), cards formatted for the device,
the rest of the page behind a signed cursor (``marrow.pages.fragments``) — but reads every row and
record as a key from the page data service (:mod:`legacy.keys`) instead of from a store version in
memory. What differs is the data access: a section's row is a precomputed list of ids (the visitor's
country and maturity are in its key), and the cards are records fetched by id and decoded.

Batching: ``"fragment"`` (the default, the legacy path at its best) asks for all the fragment's row
lists in one call and all its records in a second; ``"section"`` asks per section, as a page made of
independent components does (two calls a section).

Scope: home, story and genre pages for signed-out visitors, which is what the headline benchmark
builds. Personalised rows (``continue_watching``, ``because_you_watched``, ``my_list``) are empty
without a profile, as in Marrow; a profile, a title page's "more like this" or a search page is
refused with ValueError: the legacy key space has no keys for them.
"""

from __future__ import annotations

import secrets
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import numpy as np

from legacy import keys
from marrow import records
from marrow.pages import Card, Fragment, Layouts, Section, SectionSpec, Visitor
from marrow.pages.fragments import Cursor, CursorCodec
from marrow.pages.sections import CANDIDATES

PERSONALISED = ("continue_watching", "because_you_watched", "my_list")
_IDS = msgspec.json.Decoder(list[int])
_DECODERS: dict[str, Any] = {t.__name__: msgspec.json.Decoder(t) for t in records.TYPES}


def _pack_ids(ids: set[int]) -> bytes:
    """Title ids shown so far, as a legacy cursor carries them (it has no ordinals): zlib'd deltas."""
    arr = np.fromiter(sorted(ids), dtype=np.int64, count=len(ids))
    return zlib.compress(np.diff(arr, prepend=0).astype(np.uint32).tobytes(), 1)


def _unpack_ids(packed: bytes) -> set[int]:
    raw = zlib.decompress(packed)
    return set(np.cumsum(np.frombuffer(raw, dtype=np.uint32).astype(np.int64)).tolist())


def take(candidates: Iterable[int], seen: set[int], length: int) -> list[int]:
    """The first ``length`` candidates not in ``seen``; adds them to ``seen`` (page construction's
    dedup, one id at a time, as a page service over keys does it)."""
    out: list[int] = []
    for c in candidates:
        if c not in seen:
            seen.add(c)
            out.append(c)
            if len(out) == length:
                break
    return out


class PageData(Protocol):
    def get_many(self, keys: list[str]) -> dict[str, bytes | None]:
        """The values of ``keys`` in one call (None: no such key)."""


@dataclass
class _Section:
    """One section of the fragment being built: where its row is, and what it chose."""

    spec: SectionSpec
    key: str  # the row list's key, or the collection's record key
    kind: str  # "titles", "stories" or "collection"
    title: str
    numbered: bool = False
    chosen: list[int] | None = None


class LegacyPageBuilder:
    """Builds pages from ``layouts`` over ``data`` (a :class:`~legacy.service.PageDataClient`)."""

    def __init__(
        self, layouts: Layouts, data: PageData, batching: str = "fragment", secret: bytes | None = None
    ):
        if batching not in ("fragment", "section"):
            raise ValueError(f"batching is 'fragment' or 'section', not {batching!r}")
        self.layouts, self.data, self.batching = layouts, data, batching
        self.codec = CursorCodec(secret or secrets.token_bytes(16))

    def record(self, type_name: str, key: Any) -> Any:
        """One render-ready record (a story page's own), or None."""
        body = self.data.get_many([keys.record_key(type_name, key)])[keys.record_key(type_name, key)]
        return None if body is None else _DECODERS[type_name].decode(body)

    def build(
        self, page: str, visitor: Visitor, subject: Any = None, cursor: str | Cursor | None = None
    ) -> Fragment:
        """The next fragment of a page: the first when ``cursor`` is None."""
        started = time.perf_counter()
        if visitor.profile is not None:
            raise ValueError("the legacy harness builds pages for signed-out visitors only")
        layout = self.layouts.get(page, visitor.device)
        if isinstance(cursor, str):
            cursor = self.codec.decode(cursor)
        first = cursor.next if cursor is not None else 0
        seen = _unpack_ids(cursor.seen) if cursor is not None else set()
        page_started = cursor.started if cursor is not None else time.time()
        if cursor is not None:
            subject = cursor.subject
        last = min(len(layout.sections), first + layout.fragment_rows)
        plans = [p for spec in layout.sections[first:last] if (p := _plan(spec, page, visitor, subject))]
        candidates = layout.row_length * CANDIDATES
        if self.batching == "fragment":
            lists = self.data.get_many([p.key for p in plans]) if plans else {}
            collections = self._collection_titles(plans, lists, visitor)
            for p in plans:
                _choose(p, lists[p.key], collections, seen, layout.row_length, candidates)
            found = self._records(plans)
        else:
            found = {}
            for p in plans:
                lists = self.data.get_many([p.key])
                collections = self._collection_titles([p], lists, visitor)
                _choose(p, lists[p.key], collections, seen, layout.row_length, candidates)
                found.update(self._records([p]))
        sections = [s for p in plans if (s := _section(p, found, visitor.device)) is not None]
        next_cursor = None
        if last < len(layout.sections):
            next_cursor = self.codec.encode(
                Cursor(page, subject, None, None, "legacy", None, last, page_started, _pack_ids(seen))
            )
        return Fragment(
            page,
            visitor.device,
            layout.kind,
            None,
            sections,
            [],
            round((time.perf_counter() - started) * 1000, 3),
            layout.deadline_ms,
            next_cursor,
        )

    def _collection_titles(
        self, plans: list[_Section], lists: dict[str, bytes | None], visitor: Visitor
    ) -> dict[str, list[int]]:
        """A collection's titles the visitor may watch: the collection names ids, so eligibility needs
        the titles' records (one more call)."""
        wanted: dict[str, list[int]] = {}
        for p in plans:
            body = lists[p.key]
            if p.kind == "collection" and body is not None:
                collection = _DECODERS["Collection"].decode(body)
                p.title = p.spec.title or collection.name
                wanted[p.key] = collection.titles
        if not wanted:
            return {}
        bodies = self.data.get_many(
            list(dict.fromkeys(keys.record_key("Title", t) for ts in wanted.values() for t in ts))
        )
        titles = {t.id: t for b in bodies.values() if b is not None for t in [_DECODERS["Title"].decode(b)]}
        return {
            k: [i for i in ids if i in titles and _allowed(titles[i], visitor)] for k, ids in wanted.items()
        }

    def _records(self, plans: Iterable[_Section]) -> dict[str, Any]:
        wanted = [
            keys.record_key("Story" if p.kind == "stories" else "Title", i)
            for p in plans
            for i in p.chosen or ()
        ]
        if not wanted:
            return {}
        bodies = self.data.get_many(list(dict.fromkeys(wanted)))
        return {
            k: _DECODERS["Story" if k.startswith("story/") else "Title"].decode(b)
            for k, b in bodies.items()
            if b is not None
        }


def _allowed(title: records.Title, visitor: Visitor) -> bool:
    return visitor.country in title.countries and title.maturity <= visitor.maturity


def _plan(spec: SectionSpec, page: str, visitor: Visitor, subject: Any) -> _Section | None:
    """Where a section's row is, and its title; None for a section with nothing to show."""
    g, params, v = spec.generator, spec.params, visitor
    if g in PERSONALISED and (page != "title" or g != "because_you_watched"):
        return None  # signed out: nothing to continue, nothing watched, no list
    if g in ("trending", "new_releases", "top10"):
        title = {"trending": "Trending now", "new_releases": "New releases"}.get(
            g, f"Top 10 in {v.country} today"
        )
        return _Section(
            spec, keys.title_row(g, v.country, v.maturity), "titles", spec.title or title, g == "top10"
        )
    if g == "genre":
        genre = params.get("genre") or subject
        if not isinstance(genre, str):
            return None
        return _Section(
            spec, keys.title_row("genre", v.country, v.maturity, genre), "titles", spec.title or genre
        )
    if g == "collection":
        return _Section(spec, keys.record_key("Collection", params["slug"]), "collection", spec.title or "")
    if g == "stories":
        genre = params.get("genre")
        title_id = subject if page == "title" and isinstance(subject, int) and genre is None else None
        label = f"{genre} stories" if genre else "Latest stories"
        return _Section(spec, keys.story_row(genre, title_id), "stories", spec.title or label)
    raise ValueError(f"the legacy key space has no rows for a {g!r} section on a {page} page")


def _choose(
    p: _Section,
    body: bytes | None,
    collections: dict[str, list[int]],
    seen: set[int],
    row_length: int,
    candidates: int,
) -> None:
    """The ids the section shows: stories as listed, titles deduplicated against the page so far."""
    length = p.spec.length or row_length
    if p.kind == "collection":
        ids = collections.get(p.key, [])
    else:
        ids = _IDS.decode(body) if body is not None else []
    if p.kind == "stories":
        p.chosen = ids[:length]
    else:
        p.chosen = take(ids[:candidates], seen, 10 if p.numbered else length)


def _section(p: _Section, found: dict[str, Any], device: str) -> Section | None:
    if p.kind == "stories":
        stories = [s for i in p.chosen or () if (s := found.get(keys.record_key("Story", i))) is not None]
        items = [Card(s.id, s.slug, s.headline, s.hero.get(device) or "", summary=s.summary) for s in stories]
    else:
        titles = [t for i in p.chosen or () if (t := found.get(keys.record_key("Title", i))) is not None]
        items = [
            Card(
                t.id,
                t.slug,
                t.name,
                t.artwork.get(device) or "",
                t.year,
                t.maturity,
                rank=n if p.numbered else None,
            )
            for n, t in enumerate(titles, 1)
        ]
    if not items:
        return None
    return Section(p.spec.key, p.title, "stories" if p.kind == "stories" else "titles", items)
