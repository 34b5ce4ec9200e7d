"""Search over titles and stories, on the store's prefix indexes: by words, by prefix, ranked.

A query's words must all match (each as a prefix of some word of the title's name or the story's
headline: "str thi" finds "Stranger Things"). Results rank by how well they match — the whole name
equal to the query, then the name starting with it, then every word matching whole, then prefixes —
and then by popularity (titles) or recency (stories). :func:`complete` gives autocomplete
suggestions as the visitor types.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marrow.pages.catalogue import Catalogue

MAX_QUERY = 200  # characters; longer queries are refused by the site
MAX_WORDS = 8


@dataclass(frozen=True)
class Results:
    titles: np.ndarray  # Title ordinals, best first
    stories: np.ndarray  # Story ordinals, best first


def words_of(query: str) -> list[str]:
    return query.casefold().split()[:MAX_WORDS]


def _matches(cat: Catalogue, type_name: str, field: str, words: list[str]) -> np.ndarray:
    """Ordinals whose ``field`` has, for every query word, a word starting with it."""
    if type_name not in cat.state:
        return np.zeros(0, dtype=np.int64)
    index = cat.state[type_name].prefix_index(field)
    found: np.ndarray | None = None
    for w in sorted(words, key=len, reverse=True):  # longer words are rarer: narrow early
        ords = np.asarray(index.find(w), dtype=np.int64)
        found = ords if found is None else np.intersect1d(found, ords, assume_unique=True)
        if not len(found):
            break
    return np.zeros(0, dtype=np.int64) if found is None else found


def _quality(texts: list[str], query: str, words: list[str]) -> np.ndarray:
    """Higher is a better match: 4 equal; 3 starts with the query, then a word ends; 2 starts with
    the query; 1 every query word is a whole word of the text; 0 prefixes only."""
    out = np.zeros(len(texts), dtype=np.int64)
    whole = set(words)
    for i, text in enumerate(texts):
        folded = text.casefold()
        if folded == query:
            out[i] = 4
        elif folded.startswith(query):
            out[i] = 3 if not folded[len(query)].isalnum() else 2
        elif whole <= {w.strip(".,:;!?\"'()") for w in folded.split()}:
            out[i] = 1
    return out


def search(cat: Catalogue, query: str, limit: int = 50) -> Results:
    """Titles and stories matching every word of ``query``, best first."""
    words = words_of(query)
    if not words:
        return Results(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    q = " ".join(words)
    titles = _matches(cat, "Title", "name", words)
    if len(titles):
        names = cat.titles.read(titles, ["name"])["name"]
        quality = _quality(names, q, words)
        titles = titles[np.lexsort((cat.ids[titles], -cat.popularity[titles], -quality))][:limit]
    stories = _matches(cat, "Story", "headline", words)
    if len(stories):
        reader = cat.state["Story"]
        quality = _quality(reader.read(stories, ["headline"])["headline"], q, words)
        published = reader.array("published", stories)
        stories = stories[np.lexsort((-published, -quality))][:limit]
    return Results(titles, stories)


def complete(cat: Catalogue, prefix: str, limit: int = 8) -> list[str]:
    """Autocomplete: names of the best titles (then story headlines) matching what was typed."""
    found = search(cat, prefix, limit)
    out = cat.titles.read(found.titles, ["name"])["name"] if len(found.titles) else []
    if len(out) < limit and len(found.stories):
        out += cat.state["Story"].read(found.stories[: limit - len(out)], ["headline"])["headline"]
    return list(dict.fromkeys(out))[:limit]
