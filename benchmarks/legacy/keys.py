"""The legacy key space: one key per render-ready record, one per precomputed row list.

A page of the legacy read path is many keys. Records are stored as their JSON under
``title/{id}``, ``story/{id}`` and ``collection/{slug}``; the rows a page shows are lists of ids the
consumer precomputed, per country and maturity level for title rows (the visitor's filter is baked
into the key, as a key-value read model must)::

    row/trending/{country}/{maturity}        titles by popularity, available there and allowed
    row/top10/{country}/{maturity}           the first ten of those
    row/new_releases/{country}/{maturity}    titles by date added
    row/genre/{genre}/{country}/{maturity}   a genre's titles by popularity
    row/stories                              stories, newest first
    row/stories/genre/{genre}                a genre's stories, newest first
    row/stories/title/{id}                   stories featuring a title, newest first
    meta/applied                             the last stream sequence the consumer applied

Each list holds at most :data:`ROW_CAP` ids: the candidates page construction keeps for the longest
row (40 titles × ``marrow.pages.sections.CANDIDATES``), so dedup across rows sees what Marrow's does.
"""

from __future__ import annotations

from marrow.pages.sections import CANDIDATES

#: A title's minimum age is one of these; a visitor's maturity setting reads the highest level at or
#: below it.
MATURITIES = (0, 7, 13, 16, 18)
#: Ids kept per row list.
ROW_CAP = 40 * CANDIDATES
APPLIED = "meta/applied"


def level(maturity: int) -> int:
    """The maturity level whose lists a visitor allowed up to ``maturity`` reads."""
    return max((m for m in MATURITIES if m <= maturity), default=MATURITIES[0])


def record_key(type_name: str, key: object) -> str:
    """The key of a render-ready record (``Title``/``Story`` by id, ``Collection`` by slug)."""
    return f"{type_name.lower()}/{key}"


def title_row(generator: str, country: str, maturity: int, genre: str | None = None) -> str:
    """The key of a precomputed title row (``trending``, ``top10``, ``new_releases`` or ``genre``)."""
    what = f"genre/{genre}" if generator == "genre" else generator
    return f"row/{what}/{country}/{level(maturity)}"


def story_row(genre: str | None = None, title: int | None = None) -> str:
    if genre is not None:
        return f"row/stories/genre/{genre}"
    if title is not None:
        return f"row/stories/title/{title}"
    return "row/stories"
