"""Assembly: a page's rows deduplicated, cut to the device's length and formatted as cards.

Page construction deduplicates rows in page order (a title shown in a higher row is not repeated lower
down, nor in a later fragment: the cursor carries what was shown) and cuts them to the device's
length; this module turns the final ordinals into cards. Cards carry what a client needs to draw them
on its device — the artwork URL in that device's size, not every size — and nothing it does not.
Cards are read from the store in bulk, one read per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import numpy as np

from marrow.store import TypeReader

TITLE_FIELDS = ["id", "slug", "name", "year", "maturity"]
STORY_FIELDS = ["id", "slug", "headline", "summary"]


class Card(msgspec.Struct, omit_defaults=True, gc=False):
    """A title or story as a row shows it."""

    id: int
    slug: str
    name: str
    image: str
    year: int | None = None
    maturity: int | None = None
    summary: str | None = None
    rank: int | None = None  # 1-based, in a numbered (top 10) row


def title_cards(
    titles: TypeReader,
    ordinals: np.ndarray,
    device: str,
    numbered: bool = False,
    live: Mapping[int, Any] = {},
) -> list[Card]:
    """Cards of the base records at ``ordinals``; those in ``live`` (replaced in flight) as replaced."""
    cols = titles.read(ordinals, TITLE_FIELDS)
    cols["artwork"] = titles.read_entry("artwork", device, ordinals)
    _overlay(cols, ordinals, live, TITLE_FIELDS, device, "artwork")
    rows = zip(
        cols["id"], cols["slug"], cols["name"], cols["artwork"], cols["year"], cols["maturity"], strict=True
    )
    if numbered:
        return [
            Card(i, s, name, img or "", y, m, rank=n) for n, (i, s, name, img, y, m) in enumerate(rows, 1)
        ]
    return [Card(i, slug, name, image or "", year, maturity) for i, slug, name, image, year, maturity in rows]


def story_cards(
    stories: TypeReader, ordinals: np.ndarray, device: str, live: Mapping[int, Any] = {}
) -> list[Card]:
    cols = stories.read(ordinals, STORY_FIELDS)
    cols["hero"] = stories.read_entry("hero", device, ordinals)
    _overlay(cols, ordinals, live, STORY_FIELDS, device, "hero")
    rows = zip(cols["id"], cols["slug"], cols["headline"], cols["hero"], cols["summary"], strict=True)
    return [
        Card(i, slug, headline, image or "", summary=summary) for i, slug, headline, image, summary in rows
    ]


def _overlay(
    cols: dict[str, list[Any]],
    ordinals: np.ndarray,
    live: Mapping[int, Any],
    fields: list[str],
    device: str,
    image: str,
) -> None:
    """Replace, in place, the values of records the overlay changed (eligibility was checked before)."""
    if not live:
        return
    for i, o in enumerate(ordinals.tolist()):
        record = live.get(o)
        if record is not None:
            for f in fields:
                cols[f][i] = getattr(record, f)
            cols[image][i] = (getattr(record, image) or {}).get(device)
