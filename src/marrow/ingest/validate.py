"""Step 3, validate: required fields and constraints, per kind, each problem reported with its field.

Validation sees one document after the rules have run; whether its references resolve is the next
step's business (:mod:`marrow.ingest.resolve`). Every check reports and carries on, so an editor
sees all that is wrong at once.
"""

from __future__ import annotations

import re
import time
from collections import Counter

from marrow.cms.countries import COUNTRIES
from marrow.cms.model import (
    Asset,
    Collection,
    Document,
    ImageBlock,
    PageLayout,
    Person,
    Story,
    TextBlock,
    Title,
    TitleCard,
    VideoEmbed,
)
from marrow.ingest.report import FieldError
from marrow.ingest.rules import TEMPLATES
from marrow.records import DEVICES

__all__ = ["MATURITY", "PAGES", "SECTION_KINDS", "validate"]

SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MATURITY = (0, 7, 13, 16, 18)
PAGES = ("home", "genre", "title", "story")  # page types an editor lays out (search shows results)
#: section kind → the field of SectionSpec it needs (None: nothing)
SECTION_KINDS: dict[str, str | None] = {
    "collection": "collection",
    "genre": "genre",
    "trending": None,
    "top10": None,
    "new": None,
    "my_list": None,
    "because_you_watched": None,
    "continue_watching": None,
    "stories": None,
}
_COUNTRIES = frozenset(COUNTRIES)
_BLOCK_KINDS = {TextBlock: "text", ImageBlock: "image", TitleCard: "title", VideoEmbed: "video"}


class _Check:
    def __init__(self, kind: str, id: int):
        self.kind, self.id = kind, id
        self.errors: list[FieldError] = []

    def __call__(self, ok: bool, field: str, message: str) -> None:
        if not ok:
            self.errors.append(FieldError(self.kind, self.id, field, message))

    def text(self, value: str, field: str, max_len: int, required: bool = True) -> None:
        if required:
            self(bool(value.strip()), field, "required: it is empty")
        self(len(value) <= max_len, field, f"at most {max_len} characters, not {len(value)}")

    def slug(self, value: str) -> None:
        self(
            bool(SLUG.fullmatch(value)),
            "slug",
            f"{value!r} is not a slug: use lower-case letters and digits joined by single hyphens",
        )


def validate(kind: str, id: int, doc: Document) -> list[FieldError]:
    """Every problem with ``doc``; an empty list when it may be written."""
    check = _Check(kind, id)
    if isinstance(doc, Story):
        _story(check, doc)
    elif isinstance(doc, Title):
        _title(check, doc)
    elif isinstance(doc, Collection):
        check.text(doc.name, "name", 120)
        check.slug(doc.slug)
        check(bool(doc.titles), "titles", "a collection needs at least one title")
        for t, n in Counter(doc.titles).items():
            check(n == 1, "titles", f"title {t} is in the collection {n} times")
    elif isinstance(doc, Person):
        check.text(doc.name, "name", 200)
    elif isinstance(doc, Asset):
        check.text(doc.path, "path", 500)
        check(not doc.path.startswith("/") and ".." not in doc.path, "path", "a path under the origin")
        check(doc.width > 0 and doc.height > 0, "width", "width and height must be positive")
        check(doc.kind == "video" or doc.duration is None, "duration", "only a video has a duration")
    elif isinstance(doc, PageLayout):
        _layout(check, doc)
    return check.errors


def _story(check: _Check, doc: Story) -> None:
    check.text(doc.headline, "headline", 120)
    check.slug(doc.slug)
    check.text(doc.summary, "summary", 300, required=False)
    template = TEMPLATES.get(doc.template)
    if template is None:
        check(
            False, "template", f"unknown template {doc.template!r}; the templates are {', '.join(TEMPLATES)}"
        )
        return
    check(
        doc.hero is not None,
        "hero",
        f"a {doc.template} story needs a hero image"
        if template.hero
        else "required: a hero image, or a featured title whose artwork can stand in",
    )
    counts = Counter(_BLOCK_KINDS[type(b)] for b in doc.blocks)
    for block_kind, least in template.min_blocks:
        check(
            counts[block_kind] >= least,
            "blocks",
            f"a {doc.template} story needs at least {least} {block_kind} block(s), "
            f"it has {counts[block_kind]}",
        )
    for i, b in enumerate(doc.blocks):
        if isinstance(b, TextBlock):
            check(bool(b.text.strip()), f"blocks[{i}].text", "required: the text block is empty")
        elif isinstance(b, TitleCard):
            check(b.title is not None, f"blocks[{i}].title", "required: which title does the card show?")
        elif isinstance(b, ImageBlock | VideoEmbed):
            check(b.asset is not None, f"blocks[{i}].asset", "required: which asset does the block show?")


def _title(check: _Check, doc: Title) -> None:
    check.text(doc.name, "name", 200)
    check.slug(doc.slug)
    check.text(doc.synopsis, "synopsis", 1000)
    this_year = time.gmtime().tm_year
    check(
        1880 <= doc.year <= this_year + 3, "year", f"a year between 1880 and {this_year + 3}, not {doc.year}"
    )
    check(doc.maturity in MATURITY, "maturity", f"one of {MATURITY}, not {doc.maturity}")
    check(0 < doc.runtime <= 1000, "runtime", f"minutes between 1 and 1000, not {doc.runtime}")
    check(bool(doc.genres), "genres", "a title needs at least one genre")
    check(doc.artwork is not None, "artwork", "required: the title's box art")
    check(0 <= doc.popularity <= 1_000_000, "popularity", "between 0 and 1,000,000")
    for i, w in enumerate(doc.availability):
        unknown = [c for c in w.countries if c not in _COUNTRIES]
        check(not unknown, f"availability[{i}].countries", f"not ISO codes of our 190 countries: {unknown}")
        check(w.end is None or w.end > w.start, f"availability[{i}].end", "a window must end after it starts")


def _layout(check: _Check, doc: PageLayout) -> None:
    check(doc.page in PAGES, "page", f"one of {', '.join(PAGES)}, not {doc.page!r}")
    check(doc.device in DEVICES, "device", f"one of {', '.join(DEVICES)}, not {doc.device!r}")
    check(bool(doc.sections), "sections", "a layout needs at least one section")
    for i, s in enumerate(doc.sections):
        if s.kind not in SECTION_KINDS:
            check(
                False,
                f"sections[{i}].kind",
                f"unknown section kind {s.kind!r}; kinds: {', '.join(SECTION_KINDS)}",
            )
            continue
        needs = SECTION_KINDS[s.kind]
        if needs is not None and not (needs == "genre" and doc.page == "genre"):  # a genre page gives its own
            check(
                getattr(s, needs) is not None,
                f"sections[{i}].{needs}",
                f"a {s.kind} section needs its {needs}",
            )
        check(1 <= s.limit <= 100, f"sections[{i}].limit", f"between 1 and 100, not {s.limit}")
