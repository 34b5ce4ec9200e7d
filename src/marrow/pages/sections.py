"""Section generators: what fills each row of a page, behind one small protocol.

A generator turns the request's :class:`Context` and its :class:`~marrow.pages.layouts.SectionSpec`
into a :class:`Row` of *candidates* — ordinals in order of preference, more than the row shows — or
None when it has nothing to show (no continue-watching for a new profile). Page construction then
filters every title row by the visitor's country and maturity (so no generator can forget to),
ranks it, removes titles already shown higher on the page and cuts it to the device's length.

Generators are small objects in a registry (``GENERATORS``); a layout names them. ``inline``
generators read only the store and what the builder already fetched (the profile's engagement), and
finish in microseconds, so they run in the request's thread — every built-in one does. A generator
that waits on something (a remote personaliser: set ``inline = False``), and any generator a fault is
injected into, runs in a pool, where the page's deadline can abandon it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from marrow.pages.catalogue import Catalogue
from marrow.pages.engagement import Engagement
from marrow.pages.live import Live
from marrow.pages.search import search

CANDIDATES = 4  # candidates a generator offers per title the row shows (dedup and ranking need spares)


@dataclass(frozen=True)
class Visitor:
    """Who the page is for. A signed-out visitor has no profile."""

    country: str = "US"
    device: str = "web"
    maturity: int = 18  # the highest maturity rating the profile may see
    profile: int | None = None


@dataclass
class Context:
    """What a generator may read: one store version, the visitor, and what the page is about."""

    view: Any  # a store version or a local client's view (a Dataset): records by key and index
    catalogue: Catalogue
    visitor: Visitor
    page: str = "home"  # the page type being built
    engagement: list[Engagement] = field(default_factory=list)  # newest first
    subject: Any = None  # the title id, story id or genre of a title, story or genre page
    query: str | None = None  # a search page's query
    length: int = 40  # titles the row will show
    live: Live = field(default_factory=Live)  # records the view's overlay changed since its base


@dataclass
class Row:
    """A generated section, before ranking, dedup and formatting."""

    title: str
    ordinals: np.ndarray  # candidates, best first (Title ordinals, or Story ordinals for stories)
    kind: str = "titles"  # "titles" or "stories"
    personalised: bool = False
    numbered: bool = False  # a top-10 row shows ranks
    ranked: bool = True  # False: the order is the point (continue watching, an editor's collection)


class Generator(Protocol):
    """Makes one kind of section. A personalised generator may also offer
    ``unpersonalised(ctx, params) -> Row | None``: the variant served, computed inline, when it is late
    or fails and no cached result is at hand."""

    inline: bool

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise ValueError naming what is wrong with ``params`` (called when layouts load)."""

    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row | None:
        """The row's candidates, or None when the section has nothing to show."""


class _Generator:
    """Parameter checking shared by the built-in generators: ``params`` names what they take."""

    inline: bool = True
    params: ClassVar[dict[str, type]] = {}
    required: ClassVar[tuple[str, ...]] = ()

    def check(self, params: Mapping[str, Any]) -> None:
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; this generator takes {sorted(self.params)}")
        for name in self.required:
            if name not in params:
                raise ValueError(f"parameter {name!r} is required")
        for name, value in params.items():
            if not isinstance(value, self.params[name]):
                raise ValueError(f"parameter {name!r} must be a {self.params[name].__name__}, not {value!r}")


class Trending(_Generator):
    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row:
        return Row("Trending now", ctx.catalogue.by_popularity)


class NewReleases(_Generator):
    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row:
        return Row("New releases", ctx.catalogue.by_added, ranked=False)


class TopTen(_Generator):
    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row:
        cat, v = ctx.catalogue, ctx.visitor
        top = cat.eligible(cat.by_popularity, v.country, v.maturity)[:10]
        return Row(f"Top 10 in {v.country} today", top, numbered=True, ranked=False)


class Genre(_Generator):
    """A genre's titles; on a genre page, the page's genre unless ``genre`` is given."""

    params: ClassVar[dict[str, type]] = {"genre": str}

    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row | None:
        genre = params.get("genre") or ctx.subject
        if not isinstance(genre, str):
            return None
        return Row(genre, ctx.catalogue.genre(genre))


class Collection(_Generator):
    """An editorial collection, in the editor's order: by ``slug``, or by ``id`` (an editor's layout)."""

    params: ClassVar[dict[str, type]] = {"slug": str, "id": int}

    def check(self, params: Mapping[str, Any]) -> None:
        super().check(params)
        if ("slug" in params) == ("id" in params):
            raise ValueError("a collection section names its collection by 'slug' or by 'id' (one of them)")

    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row | None:
        if "Collection" not in ctx.view:
            return None  # (read through the view: an editor's change shows at once)
        collections = ctx.view["Collection"]
        if "id" in params:
            c = collections.get(params["id"])
        else:
            found = collections.find("slug", params["slug"])
            c = found[0] if found else None
        if c is None:
            return None
        ords = ctx.catalogue.ordinals_of(list(c.titles))
        return Row(c.name, ords[ords >= 0], ranked=False)


class BecauseYouWatched(_Generator):
    """Titles like the one the profile played last (on a title page: like the page's title)."""

    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row | None:
        subject = ctx.subject if ctx.page == "title" and isinstance(ctx.subject, int) else None
        if subject is None:
            plays = [e for e in ctx.engagement if e.action == "play"]
            if not plays:
                return None
            subject = plays[0].title
        o = int(ctx.catalogue.ordinals_of([subject])[0])
        if o < 0:
            return None
        watched = ctx.catalogue.titles[o]
        personal = ctx.page != "title"
        label = f"Because you watched {watched.name}" if personal else "More like this"
        return Row(label, ctx.catalogue.similar(o, list(watched.genres)), personalised=personal)

    def unpersonalised(self, ctx: Context, params: Mapping[str, Any]) -> Row:
        return Row("Popular now", ctx.catalogue.by_popularity)


class ContinueWatching(_Generator):
    """Titles the profile started and did not finish, most recent first."""

    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row | None:
        started: dict[int, None] = {}
        finished = set()
        for e in ctx.engagement:
            if e.action == "play" and e.title not in finished and e.progress < 0.95:
                started.setdefault(e.title)
            elif e.action == "play":
                finished.add(e.title)
        if not started:
            return None
        ords = ctx.catalogue.ordinals_of(list(started))
        return Row("Continue watching", ords[ords >= 0], personalised=True, ranked=False)


class MyList(_Generator):
    """Titles the profile added to its list, most recent first."""

    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row | None:
        latest: dict[int, str] = {}  # newest first: a title's first event says whether it is listed
        for e in ctx.engagement:
            if e.action in ("add", "remove"):
                latest.setdefault(e.title, e.action)
        added = [t for t, action in latest.items() if action == "add"]
        if not added:
            return None
        ords = ctx.catalogue.ordinals_of(added)
        return Row("My list", ords[ords >= 0], personalised=True, ranked=False)


class Stories(_Generator):
    """Stories, newest first; only those about ``genre`` (or the page's title) when given."""

    params: ClassVar[dict[str, type]] = {"genre": str}

    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row | None:
        ords = ctx.catalogue.stories()
        if not len(ords):
            return None
        stories = ctx.catalogue.state["Story"]
        genre = params.get("genre")
        if genre is not None:
            ords = np.asarray([o for o in stories.hash_index("genres").find(genre)], dtype=np.int64)
            ords = ords[np.argsort(-stories.array("published", ords), kind="stable")]
        elif ctx.page == "title" and isinstance(ctx.subject, int):
            ords = np.asarray(stories.hash_index("titles").find(ctx.subject), dtype=np.int64)
            ords = ords[np.argsort(-stories.array("published", ords), kind="stable")]
        return Row(f"{genre} stories" if genre else "Latest stories", ords, kind="stories", ranked=False)


class Search(_Generator):
    """A search page's results: titles, or stories with ``kind = "stories"``."""

    params: ClassVar[dict[str, type]] = {"kind": str}

    def check(self, params: Mapping[str, Any]) -> None:
        super().check(params)
        if params.get("kind", "titles") not in ("titles", "stories"):
            raise ValueError(f"parameter 'kind' is 'titles' or 'stories', not {params['kind']!r}")

    def generate(self, ctx: Context, params: Mapping[str, Any]) -> Row | None:
        if not ctx.query:
            return None
        found = search(ctx.catalogue, ctx.query, limit=ctx.length * CANDIDATES)
        if params.get("kind") == "stories":
            return Row(f"Stories about “{ctx.query}”", found.stories, kind="stories", ranked=False)
        return Row(f"Results for “{ctx.query}”", found.titles, ranked=False)


#: The built-in generators by the name a layout uses.
GENERATORS: dict[str, Generator] = {
    "trending": Trending(),
    "new_releases": NewReleases(),
    "top10": TopTen(),
    "genre": Genre(),
    "collection": Collection(),
    "because_you_watched": BecauseYouWatched(),
    "continue_watching": ContinueWatching(),
    "my_list": MyList(),
    "stories": Stories(),
    "search": Search(),
}
