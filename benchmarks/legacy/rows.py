"""The row lists a legacy page reads, precomputed by the consumer from the records it has seen.

A key-value read model cannot filter or sort at read time, so every row a page may show is stored
ready-made (:mod:`legacy.keys`). :class:`RowIndex` keeps the few fields of each record that decide
rows, and after each batch of records recomputes the lists of the kinds that changed, returning only
the lists whose content differs from what it returned before — so an edit of a story's headline
writes one record and no list, while a catalogue import writes tens of thousands of lists.

Orderings are Marrow's (``marrow.pages.catalogue``): popularity then id, date added then id, stories
newest first then by id; a title row keeps titles available in the country now and rated at most
the maturity level.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from legacy import keys

_JSON = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class _Title:
    popularity: int
    added: int
    maturity: int
    countries: frozenset[str]
    genres: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Story:
    published: int
    genres: tuple[str, ...]
    titles: tuple[int, ...]


class RowIndex:
    """What decides the rows, by record id; see the module docstring."""

    def __init__(self) -> None:
        self.titles: dict[int, _Title] = {}
        self.stories: dict[int, _Story] = {}
        self.written: dict[str, bytes] = {}  # the lists as last returned

    def apply(
        self, upserts: Iterable[tuple[str, dict[str, Any]]], deletes: Iterable[tuple[str, Any]]
    ) -> set[str]:
        """Take in a batch of records (``(type name, record as a dict)``) and deletions; returns the
        types whose rows may have changed."""
        changed: set[str] = set()
        for type_name, r in upserts:
            if type_name == "Title":
                self.titles[r["id"]] = _Title(
                    r["popularity"], r["added"], r["maturity"], frozenset(r["countries"]), tuple(r["genres"])
                )
            elif type_name == "Story":
                self.stories[r["id"]] = _Story(r["published"], tuple(r["genres"]), tuple(r["titles"]))
            changed.add(type_name)
        for type_name, key in deletes:
            if type_name == "Title":
                self.titles.pop(key, None)
            elif type_name == "Story":
                self.stories.pop(key, None)
            changed.add(type_name)
        return changed

    def changed_lists(self, types: set[str]) -> dict[str, bytes | None]:
        """The lists of ``types`` whose content changed since the last call (None: the list is gone)."""
        lists: dict[str, bytes] = {}
        prefixes: list[str] = []
        if "Title" in types:
            lists.update(self._title_lists())
            prefixes += ["row/trending/", "row/top10/", "row/new_releases/", "row/genre/"]
        if "Story" in types:
            lists.update(self._story_lists())
            prefixes.append("row/stories")
        out: dict[str, bytes | None] = {k: v for k, v in lists.items() if self.written.get(k) != v}
        for k in [k for k in self.written if k not in lists and k.startswith(tuple(prefixes))]:
            out[k] = None
            del self.written[k]
        self.written.update({k: v for k, v in out.items() if v is not None})
        return out

    def _title_lists(self) -> dict[str, bytes]:
        if not self.titles:
            return {}
        ids = np.fromiter(self.titles, dtype=np.int64, count=len(self.titles))
        facts = list(self.titles.values())
        popularity = np.array([t.popularity for t in facts], dtype=np.int64)
        added = np.array([t.added for t in facts], dtype=np.int64)
        maturity = np.array([t.maturity for t in facts], dtype=np.int64)
        by_popularity = np.lexsort((ids, -popularity))
        by_added = np.lexsort((ids, -added))
        where: dict[str, list[int]] = {}
        in_genre: dict[str, list[int]] = {}
        for i, t in enumerate(facts):
            for c in t.countries:
                where.setdefault(c, []).append(i)
            for g in t.genres:
                in_genre.setdefault(g, []).append(i)
        genre_orders = {}
        for g, members in in_genre.items():
            mask = np.zeros(len(ids), dtype=bool)
            mask[members] = True
            genre_orders[g] = by_popularity[mask[by_popularity]]
        out: dict[str, bytes] = {}
        cap = keys.ROW_CAP
        for country, members in where.items():
            available = np.zeros(len(ids), dtype=bool)
            available[members] = True
            for level in keys.MATURITIES:
                allowed = available & (maturity <= level)
                trending = ids[by_popularity[allowed[by_popularity]][:cap]].tolist()
                out[keys.title_row("trending", country, level)] = _JSON.encode(trending)
                out[keys.title_row("top10", country, level)] = _JSON.encode(trending[:10])
                newest = ids[by_added[allowed[by_added]][:cap]].tolist()
                out[keys.title_row("new_releases", country, level)] = _JSON.encode(newest)
                for g, order in genre_orders.items():
                    row = ids[order[allowed[order]][:cap]].tolist()
                    out[keys.title_row("genre", country, level, g)] = _JSON.encode(row)
        return out

    def _story_lists(self) -> dict[str, bytes]:
        newest = sorted(self.stories, key=lambda i: (-self.stories[i].published, i))
        out = {keys.story_row(): _JSON.encode(newest[: keys.ROW_CAP])}
        by_genre: dict[str, list[int]] = {}
        by_title: dict[int, list[int]] = {}
        for i in newest:
            s = self.stories[i]
            for g in s.genres:
                by_genre.setdefault(g, []).append(i)
            for t in dict.fromkeys(s.titles):
                by_title.setdefault(t, []).append(i)
        out.update({keys.story_row(genre=g): _JSON.encode(v[: keys.ROW_CAP]) for g, v in by_genre.items()})
        out.update({keys.story_row(title=t): _JSON.encode(v[: keys.ROW_CAP]) for t, v in by_title.items()})
        return out
