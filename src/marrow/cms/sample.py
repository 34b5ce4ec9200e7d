"""A deterministic sample of editorial content at the seed's scale: the demo's CMS and the benchmarks'.

:func:`generate` gives about 18,000 titles available over the 190 countries, the people in their casts,
their artwork, 5,000 stories published over three years, editorial collections and the page layouts,
all as :mod:`marrow.cms.model` documents. The same seed always gives the same content.

What makes it realistic enough to measure with:

* **skew** — title popularity is Zipf-like over ranks; stories feature popular titles far more often
  than the long tail, and casts reuse popular people (so a person page, a genre row or a hash index
  has the uneven fan-out of real data);
* **availability clustered by region** — a quarter of the titles are originals shown everywhere; most
  are licensed per region (one window per region, a few countries of it left out, some windows
  ending, some not started yet); the rest are local to a few countries of their home region;
* **text** — names, synopses, headlines and paragraphs are built from pools of real words in the
  patterns editors use, with ``{{title:ID}}`` placeholders and a little rich-text markup.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from marrow.cms import _words as w
from marrow.cms.countries import REGIONS
from marrow.cms.model import (
    Asset,
    Block,
    Collection,
    Document,
    ImageBlock,
    PageLayout,
    Person,
    SectionSpec,
    Story,
    TextBlock,
    Title,
    TitleCard,
    VideoEmbed,
    Window,
)

__all__ = ["FIRST_TITLE_ID", "NOW", "Sample", "generate", "slugify"]

#: The moment the sample is generated "at" (2026-11-01 00:00 UTC), so that the same seed gives the same
#: windows and story dates whatever the clock says.
NOW = 1_793_491_200
YEAR = 365 * 86_400
#: Title ids start here (catalogue ids look nothing like the small ids of other documents).
FIRST_TITLE_ID = 80_000_001
TEMPLATES = ("article", "list", "interview", "news")
_DEVICE_ROWS = {"tv": 12, "web": 20, "mobile": 10}


@dataclass
class Sample:
    """Generated documents by kind, each a mapping of id → document, and when each story was published."""

    titles: dict[int, Title] = field(default_factory=dict)
    people: dict[int, Person] = field(default_factory=dict)
    assets: dict[int, Asset] = field(default_factory=dict)
    stories: dict[int, Story] = field(default_factory=dict)
    collections: dict[int, Collection] = field(default_factory=dict)
    layouts: dict[int, PageLayout] = field(default_factory=dict)
    published: dict[int, int] = field(default_factory=dict)  # story id → seconds since the epoch

    def documents(self) -> Iterator[tuple[str, int, Document]]:
        """``(kind, id, document)`` of everything, referenced documents before those referring to them."""
        kinds: list[tuple[str, dict[int, Document]]] = [
            ("person", dict(self.people)),
            ("asset", dict(self.assets)),
            ("title", dict(self.titles)),
            ("collection", dict(self.collections)),
            ("story", dict(self.stories)),
            ("layout", dict(self.layouts)),
        ]
        for kind, docs in kinds:
            for i, doc in docs.items():
                yield kind, i, doc

    def __len__(self) -> int:
        return sum(
            len(d)
            for d in (self.titles, self.people, self.assets, self.stories, self.collections, self.layouts)
        )


def slugify(text: str) -> str:
    """A URL slug: ASCII letters and digits joined by single hyphens (``"Café Noir 2"`` → ``cafe-noir-2``)."""
    text = text.replace("'", "").replace("’", "")  # "Ana's" → "anas", not "ana-s"
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _zipf_ranks(rng: np.random.Generator, n: int, size: int, a: float) -> np.ndarray:
    """``size`` draws of 0..n-1 where rank r has weight 1/(r+1)**a."""
    p = np.arange(1, n + 1, dtype=np.float64) ** -a
    return rng.choice(n, size=size, p=p / p.sum())


class _Slugs:
    """Unique slugs per kind: a clash gets the year, then a counter."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def __call__(self, text: str, year: int | None = None) -> str:
        base = slugify(text) or "untitled"
        slug = base
        if slug in self.taken and year is not None:
            slug = f"{base}-{year}"
        n = 2
        while slug in self.taken:
            slug, n = f"{base}-{n}", n + 1
        self.taken.add(slug)
        return slug


def generate(
    titles: int = 18_000, stories: int = 5_000, people: int = 12_000, seed: int = 5, now: int = NOW
) -> Sample:
    """Generate the sample content. About 1.5 s at the default scale on the project's machines."""
    if titles < 10 or stories < 0 or people < 10:
        raise ValueError("the sample needs at least 10 titles and 10 people, and a story count ≥ 0")
    people = min(people, len(w.FIRST_NAMES) * len(w.LAST_NAMES))
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    out = Sample()
    _people(out, people, nrng)
    _titles(out, titles, rng, nrng, now)
    _stories(out, stories, rng, nrng, now)
    _collections(out, rng, nrng)
    _layouts(out)
    return out


def _people(out: Sample, n: int, nrng: np.random.Generator) -> None:
    combos = nrng.choice(len(w.FIRST_NAMES) * len(w.LAST_NAMES), size=n, replace=False).tolist()
    for i, c in enumerate(combos):
        first, last = divmod(c, len(w.LAST_NAMES))
        out.people[i + 1] = Person(name=f"{w.FIRST_NAMES[first]} {w.LAST_NAMES[last]}")


def _asset(out: Sample, path: str, width: int, height: int, alt: str, **kw: int | str | None) -> int:
    asset_id = len(out.assets) + 1
    out.assets[asset_id] = Asset(path=path, width=width, height=height, alt=alt, **kw)  # type: ignore[arg-type]
    return asset_id


def _title_name(rng: random.Random) -> str:
    pattern = rng.random()
    adj, noun, place = rng.choice(w.ADJECTIVES), rng.choice(w.NOUNS), rng.choice(w.PLACES)
    if pattern < 0.3:
        name = f"The {adj} {noun}"
    elif pattern < 0.45:
        name = f"{noun} of {place}"
    elif pattern < 0.6:
        name = f"{adj} {noun}"
    elif pattern < 0.7:
        name = f"{rng.choice(w.FIRST_NAMES)}'s {noun}"
    elif pattern < 0.8:
        name = f"The {noun}"
    elif pattern < 0.9:
        name = f"{place} {noun}"
    else:
        name = f"{adj} {noun}s"
    if rng.random() < 0.07:
        name += f" {rng.randint(2, 4)}"
    return name


def _synopsis(rng: random.Random, place: str) -> str:
    first = f"{rng.choice(w.ROLES)} {rng.choice(w.DEEDS)} in {place}, but {rng.choice(w.TWISTS)}."
    return f"{first[0].upper()}{first[1:]} {rng.choice(w.MOODS)}".strip()


def _availability(rng: random.Random, kind: float, start: int, now: int) -> list[Window]:
    regions = list(REGIONS)
    if kind < 0.25:  # an original: everywhere, from its premiere
        return [Window(countries=[c for r in regions for c in REGIONS[r]], start=start)]
    if kind < 0.8:  # licensed region by region
        windows = []
        for region in rng.sample(regions, rng.choices((1, 2, 3, 4), (4, 3, 2, 1))[0]):
            countries = [c for c in REGIONS[region] if rng.random() > 0.1] or [REGIONS[region][0]]
            begin = start + rng.randrange(0, 2 * YEAR)
            roll = rng.random()
            end = None
            if roll < 0.15:
                end = begin + rng.randrange(YEAR // 2, 3 * YEAR)  # may have ended before now
            elif roll < 0.2:
                begin, end = now + rng.randrange(86_400, 180 * 86_400), None  # not yet started
            windows.append(Window(countries=countries, start=begin, end=end))
        return windows
    home = REGIONS[rng.choice(regions)]  # local: a few countries of one region
    return [Window(countries=rng.sample(home, min(len(home), rng.randint(1, 8))), start=start)]


def _titles(out: Sample, n: int, rng: random.Random, nrng: np.random.Generator, now: int) -> None:
    slugs = _Slugs()
    popularity = np.maximum(1, (1_000_000 / np.arange(1, n + 1) ** 0.9)).astype(int)
    nrng.shuffle(popularity)
    genre_ix = _zipf_ranks(nrng, len(w.GENRES), 3 * n, 0.8).reshape(n, 3).tolist()
    cast_ix = (_zipf_ranks(nrng, len(out.people), 12 * n, 0.75) + 1).reshape(n, 12).tolist()
    for i in range(n):
        tid = FIRST_TITLE_ID + i
        name = _title_name(rng)
        show = rng.random() < 0.45
        year = rng.choices(range(1960, 2027), weights=[1 + (y - 1960) ** 2 for y in range(1960, 2027)])[0]
        slug = slugs(name, year)
        start = max(now - 8 * YEAR, int(rng.uniform(max(0, (year - 1970) * YEAR), now - 86_400)))
        artwork = _asset(out, f"titles/{tid}/boxart.jpg", 1920, 1080, f"Box art of {name}")
        genres = list(dict.fromkeys(w.GENRES[g] for g in genre_ix[i][: rng.randint(1, 3)]))
        out.titles[tid] = Title(
            name=name,
            slug=slug,
            kind="show" if show else "movie",
            synopsis=_synopsis(rng, rng.choice(w.PLACES)),
            year=year,
            maturity=rng.choice((0, 7, 13, 13, 16, 16, 18)),
            runtime=rng.randint(22, 60) if show else rng.randint(75, 170),
            genres=genres,
            cast=list(dict.fromkeys(cast_ix[i][: rng.randint(4, 12)])),
            artwork=artwork,
            availability=_availability(rng, rng.random(), start, now),
            popularity=int(popularity[i]),
        )


def _headline(rng: random.Random, template: str, t0: str, person: str, genre: str) -> str:
    k, year = rng.randint(2, 5), rng.randint(2024, 2026)
    options = {
        "list": (
            f"{rng.randint(5, 15)} {genre.lower()} titles to watch this {rng.choice(w.SEASONS)}",
            f"The best {genre.lower()} of {year}",
            f"{rng.randint(5, 12)} {rng.choice(w.ADJECTIVES).lower()} shows like {t0}",
        ),
        "article": (
            f"{t0}: everything we know about season {k}",
            f"The ending of {t0}, explained",
            f"How {t0} built its {rng.choice(w.NOUNS).lower()}",
            f"Behind the scenes of {t0}",
        ),
        "interview": (
            f"{person} on playing the lead in {t0}",
            f"Meet the cast of {t0}",
            f"{person} talks {t0} and what comes next",
        ),
        "news": (
            f"{t0} is coming back for season {k}",
            f"{t0} gets a release date",
            f"First look: {t0}",
        ),
    }[template]
    return rng.choice(options)


def _paragraphs(rng: random.Random, featured: list[int], n: int) -> list[str]:
    out = []
    for _ in range(n):
        t0, t1 = rng.choice(featured), rng.choice(featured)
        out.append(rng.choice(w.PARAGRAPHS).format(t0=f"{{{{title:{t0}}}}}", t1=f"{{{{title:{t1}}}}}"))
    return out


def _stories(out: Sample, n: int, rng: random.Random, nrng: np.random.Generator, now: int) -> None:
    if n == 0:
        return
    slugs = _Slugs()
    by_popularity = sorted(out.titles, key=lambda t: -out.titles[t].popularity)
    featured_ix = _zipf_ranks(nrng, len(by_popularity), 8 * n, 1.0).reshape(n, 8).tolist()
    # Publishing picked up over the three years: times drawn with a density rising towards now.
    when = np.sort(now - (3 * YEAR * (1 - np.sqrt(nrng.random(n))))).astype(int).tolist()
    for i in range(n):
        sid = i + 1
        template = rng.choices(TEMPLATES, (5, 3, 2, 2))[0]
        featured = list(dict.fromkeys(by_popularity[j] for j in featured_ix[i]))
        lead = out.titles[featured[0]]
        person = out.people[lead.cast[0]].name if lead.cast else "The director"
        headline = _headline(rng, template, lead.name, person, lead.genres[0])
        month = _month(when[i])
        slug = slugs(headline)
        hero = _asset(out, f"stories/{month}/{slug}-hero.jpg", 2400, 1350, headline)
        cards = featured[: rng.randint(3, 8)] if template == "list" else featured[: rng.randint(0, 2)]
        blocks: list[Block] = [TextBlock(text=p) for p in _paragraphs(rng, featured, rng.randint(2, 4))]
        for t in cards:
            blocks.insert(rng.randint(1, len(blocks)), TitleCard(title=t))
        if rng.random() < 0.4:
            image = _asset(
                out, f"stories/{month}/{slug}-{len(blocks)}.jpg", 1600, 900, f"A still from {lead.name}"
            )
            blocks.insert(rng.randint(1, len(blocks)), ImageBlock(asset=image, caption=f"{lead.name}."))
        if rng.random() < 0.3:
            poster = _asset(out, f"videos/{slug}-poster.jpg", 1920, 1080, f"Trailer of {lead.name}")
            video = _asset(
                out, f"videos/{slug}.mp4", 1920, 1080, f"Trailer of {lead.name}", kind="video",
                duration=rng.randint(60, 180), poster=poster,
            )  # fmt: skip
            blocks.append(VideoEmbed(asset=video, caption=f"Watch the trailer for {lead.name}."))
        out.stories[sid] = Story(
            headline=headline,
            slug=slug,
            template=template,
            summary="" if rng.random() < 0.3 else f"{lead.name}: {lead.synopsis.split('. ')[0].rstrip('.')}.",
            hero=hero,
            genres=[] if rng.random() < 0.5 else lead.genres[:2],
            blocks=blocks,
        )
        out.published[sid] = when[i]


def _month(t: int) -> str:
    days = t // 86_400  # civil from days (Howard Hinnant's algorithm), to avoid a datetime per story
    z = days + 719_468
    era, doe = divmod(z, 146_097)
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    mp = (5 * (doe - (365 * yoe + yoe // 4 - yoe // 100)) + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return f"{yoe + era * 400 + (month <= 2)}/{month:02d}"


def _collections(out: Sample, rng: random.Random, nrng: np.random.Generator) -> None:
    slugs = _Slugs()
    by_genre: dict[str, list[int]] = {}
    for tid, t in sorted(out.titles.items(), key=lambda kv: -kv[1].popularity):
        for g in t.genres:
            by_genre.setdefault(g, []).append(tid)
    cid = 0
    for genre, ids in by_genre.items():
        for name in (f"Popular {genre.lower()}", f"Award-winning {genre.lower()}", f"Hidden gems: {genre}"):
            cid += 1
            picks = sorted({ids[j] for j in _zipf_ranks(nrng, len(ids), 40, 0.7).tolist()}, key=ids.index)
            out.collections[cid] = Collection(
                name=name, slug=slugs(name), titles=picks[: rng.randint(10, 30)]
            )
    every = list(out.titles)
    for season in w.SEASONS:
        cid += 1
        name = f"Perfect for {season}"
        picks = rng.sample(every, min(len(every), 24))
        out.collections[cid] = Collection(name=name, slug=slugs(name), titles=picks)


def _layouts(out: Sample) -> None:
    collections = list(out.collections)
    lid = 0
    for device, rows in _DEVICE_ROWS.items():
        pages = {
            "home": [
                SectionSpec(kind="continue_watching", label="Continue watching", limit=rows),
                SectionSpec(kind="my_list", label="My list", limit=rows),
                SectionSpec(kind="top10", limit=10),  # (the generator names it: "Top 10 in DE today")
                SectionSpec(kind="trending", label="Trending now", limit=rows),
                *[
                    SectionSpec(kind="collection", collection=c, limit=rows)
                    for c in collections[: 6 if device == "mobile" else 10]
                ],
                SectionSpec(kind="because_you_watched", limit=rows),
                SectionSpec(kind="new", label="New releases", limit=rows),
                SectionSpec(kind="stories", label="From Tudum", limit=6),
            ],
            "genre": [
                SectionSpec(kind="genre", label="Top picks", limit=rows),
                SectionSpec(kind="trending", limit=rows),
                SectionSpec(kind="new", limit=rows),
            ],
            "title": [
                SectionSpec(kind="because_you_watched", label="More like this", limit=rows),
                SectionSpec(kind="stories", label="Stories about this title", limit=4),
            ],
            "story": [SectionSpec(kind="stories", label="Read next", limit=4)],
        }
        for page, sections in pages.items():
            lid += 1
            out.layouts[lid] = PageLayout(page=page, device=device, sections=sections)
