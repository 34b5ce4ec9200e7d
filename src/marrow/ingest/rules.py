"""Step 2, templates and business rules: what a story's template asks of it, and the values the site
derives rather than editors type.

Templates are data (:data:`TEMPLATES`): the blocks a story of that template must have and whether it
needs a hero; ``validate`` checks them. The rules fill in what an editor may leave out:

* a story without a summary gets the first sentence of its first text block;
* a story without genres gets those of the titles it features (most featured first, at most three);
* a story whose template does not require a hero, and has none, shows its first featured title's
  artwork (every render-ready story has a hero on every device);
* a title's availability *now* is the union of the countries of its windows open at ingestion time
  (``start ≤ now < end``), and it counts as *added* when the first of those windows opened.

Rules never invent references and never fail: what cannot be derived is left for ``validate`` to
report.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import msgspec

from marrow.cms.model import PLACEHOLDER, Document, Story, TextBlock, Title, TitleCard
from marrow.ingest.pull import Pulled

__all__ = ["TEMPLATES", "Availability", "Template", "apply_rules", "availability", "featured_titles"]


@dataclass(frozen=True)
class Template:
    """What a story of this template must have."""

    name: str
    description: str
    hero: bool = True  # a hero asset is required
    min_blocks: tuple[tuple[str, int], ...] = ()  # (block kind, at least this many)


#: template name → template. A story naming any other template fails validation.
TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("article", "A feature: hero, then text with cards and media", min_blocks=(("text", 1),)),
        Template("list", "A ranked or themed list of titles", min_blocks=(("title", 3),)),
        Template("interview", "Questions and answers with the cast or crew", min_blocks=(("text", 2),)),
        Template("news", "A short announcement; the hero is optional", hero=False, min_blocks=(("text", 1),)),
    )
}


@dataclass(frozen=True)
class Availability:
    """Where a title can be watched at one moment, and since when it has been on the service."""

    countries: frozenset[str]
    added: int  # seconds since the epoch; 0 if no window has opened


def availability(title: Title, now: float) -> Availability:
    """The countries whose windows are open at ``now``, and when the first window that is open opened."""
    countries: set[str] = set()
    added = 0
    for w in title.availability:
        if w.start <= now and (w.end is None or now < w.end):
            countries.update(w.countries)
            added = w.start if added == 0 else min(added, w.start)
    return Availability(frozenset(countries), added)


def featured_titles(story: Story) -> list[int]:
    """Ids of the titles a story features, in order of appearance: title cards and ``{{title:ID}}``
    placeholders, each once."""
    out: list[int] = []
    for b in story.blocks:
        if isinstance(b, TitleCard) and b.title is not None:
            out.append(b.title)
        elif isinstance(b, TextBlock):
            out += [int(m["id"]) for m in PLACEHOLDER.finditer(b.text) if m["kind"] == "title"]
    return list(dict.fromkeys(out))


_MARKUP = re.compile(r"\*\*|\*|\[([^\]]*)\]\([^)]*\)")


def _first_sentence(story: Story, pulled: Pulled) -> str:
    for b in story.blocks:
        if isinstance(b, TextBlock) and b.text.strip():
            paragraph = b.text.strip().split("\n\n")[0]

            def name(m: re.Match[str]) -> str:
                doc = pulled.ref(m["kind"], int(m["id"]))
                return getattr(doc, "name", None) or getattr(doc, "alt", None) or ""

            text = _MARKUP.sub(lambda m: m.group(1) or "", PLACEHOLDER.sub(name, paragraph))
            sentence = re.split(r"(?<=[.!?])\s", " ".join(text.split()), maxsplit=1)[0]
            return sentence[:280]
    return ""


def apply_rules(kind: str, doc: Document, pulled: Pulled) -> Document:
    """``doc`` with the template defaults and derived values filled in (a new struct; ``doc`` is kept)."""
    if isinstance(doc, Story):
        changes: dict[str, object] = {}
        if not doc.summary.strip():
            changes["summary"] = _first_sentence(doc, pulled)
        if not doc.genres:
            counts: Counter[str] = Counter()
            for t in featured_titles(doc):
                title = pulled.ref("title", t)
                if isinstance(title, Title):
                    counts.update(title.genres)
            changes["genres"] = [g for g, _ in counts.most_common(3)]
        template = TEMPLATES.get(doc.template)
        if doc.hero is None and template is not None and not template.hero:
            for t in featured_titles(doc):
                title = pulled.ref("title", t)
                if isinstance(title, Title) and title.artwork is not None:
                    changes["hero"] = title.artwork
                    break
        return msgspec.structs.replace(doc, **changes) if changes else doc
    if isinstance(doc, Title):
        genres = list(dict.fromkeys(doc.genres))
        return msgspec.structs.replace(doc, genres=genres) if genres != doc.genres else doc
    return doc
