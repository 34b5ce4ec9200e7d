"""Assembly: a page's rows deduplicated, cut to the device's length and formatted as cards.

Rows are assembled in page order. A title shown in a higher row is not repeated lower down (nor in
a later fragment: the cursor carries what was shown). Cards carry what a client needs to draw them
on its device — the artwork URL in that device's size, not every size — and nothing it does not.
Cards are read from the store in bulk, one read per row.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
import numpy as np

from marrow.store import TypeReader

TITLE_FIELDS = ["id", "slug", "name", "year", "maturity", "artwork"]
STORY_FIELDS = ["id", "slug", "headline", "summary", "hero"]


class Card(msgspec.Struct, omit_defaults=True):
    """A title or story as a row shows it."""

    id: int
    slug: str
    name: str
    image: str
    year: int | None = None
    maturity: int | None = None
    summary: str | None = None
    rank: int | None = None  # 1-based, in a numbered (top 10) row


def take(candidates: Iterable[int], seen: set[int], length: int) -> list[int]:
    """The first ``length`` candidates not in ``seen``; adds them to ``seen``."""
    out: list[int] = []
    for c in candidates:
        if c not in seen:
            seen.add(c)
            out.append(c)
            if len(out) == length:
                break
    return out


def title_cards(titles: TypeReader, ordinals: np.ndarray, device: str, numbered: bool = False) -> list[Card]:
    cols = titles.read(ordinals, TITLE_FIELDS)
    return [
        Card(i, slug, name, art.get(device, ""), year, maturity, rank=n + 1 if numbered else None)
        for n, (i, slug, name, year, maturity, art) in enumerate(
            zip(
                cols["id"],
                cols["slug"],
                cols["name"],
                cols["year"],
                cols["maturity"],
                cols["artwork"],
                strict=True,
            )
        )
    ]


def story_cards(stories: TypeReader, ordinals: np.ndarray, device: str) -> list[Card]:
    cols = stories.read(ordinals, STORY_FIELDS)
    return [
        Card(i, slug, headline, hero.get(device, ""), summary=summary)
        for i, slug, headline, summary, hero in zip(
            cols["id"], cols["slug"], cols["headline"], cols["summary"], cols["hero"], strict=True
        )
    ]
