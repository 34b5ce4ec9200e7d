"""Page construction: a layout's sections generated, ranked, assembled and served as fragments,
within a hard deadline, with fallbacks.

    builder = PageBuilder(Layouts.load(), history=impressions, engagement=SqliteEngagement(path))
    fragment = builder.build(state, "home", Visitor(country="DE", device="tv", profile=7))
    fragment.sections      # the first rows, ready to render
    fragment.cursor        # pass it back for the next fragment (None on the last one)

Lifecycle of one fragment:

1. the layout (page type × device) names its sections; this fragment takes the next
   ``fragment_rows`` of them, plus a row triggered by engagement since the page started;
2. generators produce candidates — inline ones at once, the others in a pool where the page's
   deadline can abandon them;
3. title rows keep only titles available in the visitor's country and allowed by their maturity
   setting;
4. the profile's impression history for every candidate of the fragment is read in one call, within
   its own budget, and the ranker re-orders personalisable rows;
5. rows are deduplicated across the page and cut to the device's row length, then formatted.

Deadlines and fallbacks: each section has a budget and the page a hard deadline (3 s by default). A
section that is late or fails serves its last good result for the same audience (``cached``), else,
if it is personalised, the unpersonalised trending row (``unpersonalised``), else nothing
(``omitted``); late history means unranked rows (``unpersonalised``). The fragment lists every
fallback and why. A late generator still finishes in the background and refreshes the cache, so
the next page has it: a fast answer beats a slow one.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from marrow.errors import RefreshError
from marrow.pages.assembly import Card, story_cards, title_cards
from marrow.pages.catalogue import catalogue
from marrow.pages.engagement import Engagement, EngagementStore
from marrow.pages.faults import Faults
from marrow.pages.fragments import Cursor, CursorCodec
from marrow.pages.layouts import EditorsLayouts, Layouts, SectionSpec
from marrow.pages.live import Live
from marrow.pages.ranking import FatigueRanker, HistoryReader, Ranker, Seen
from marrow.pages.sections import CANDIDATES, GENERATORS, Context, Generator, Row, Visitor

#: The ranker re-orders the first RANKED × row length candidates of a row (and history is read for
#: those): a title further down could not rise into the row past that many others.
RANKED = 2

log = logging.getLogger("marrow.pages")


class Section(msgspec.Struct, omit_defaults=True):
    key: str
    title: str
    kind: str  # "titles" or "stories"
    items: list[Card]
    personalised: bool = False
    fallback: str | None = None  # "cached", "unpersonalised" when this section fell back


class Fallback(msgspec.Struct):
    section: str
    served: str  # "cached", "unpersonalised" or "omitted"
    reason: str


class Fragment(msgspec.Struct):
    page: str
    device: str
    layout: str
    version: int | None
    sections: list[Section]
    fallbacks: list[Fallback]
    build_ms: float
    deadline_ms: float
    cursor: str | None = None
    consistent: bool = True  # False: the version the cursor began with was gone; this read a newer one


@dataclass
class _Slot:
    """One section of the fragment being built."""

    spec: SectionSpec
    generator: Generator
    row: Row | None = None
    future: cf.Future[Row | None] | None = None
    fallback: Fallback | None = None
    started: float = 0.0


@dataclass
class PageBuilder:
    """Builds pages from layouts; one per process, shared by its requests (thread-safe)."""

    layouts: Layouts
    generators: Mapping[str, Generator] = field(default_factory=lambda: dict(GENERATORS))
    ranker: Ranker = field(default_factory=FatigueRanker)
    history: HistoryReader | None = None
    engagement: EngagementStore | None = None
    faults: Faults = field(default_factory=Faults)
    history_budget_ms: float = 150.0
    workers: int = 16
    cache_size: int = 20_000  # last good rows kept for fallbacks
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    clock: Callable[[], float] = time.time
    editorial: bool = False  # build with an editor's layout (records.Layout) where the view has one

    def __post_init__(self) -> None:
        self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="marrow-section")
        self._cache: OrderedDict[tuple[Any, ...], tuple[str, Row, np.ndarray]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.codec = CursorCodec(self.secret)
        self._took = 0.01  # seconds assembly takes, smoothed over the pages built
        self._reserve = 0.03  # seconds kept for assembly before a page's deadline (learnt as pages build)
        self._editorial = EditorsLayouts(self.layouts, self.generators) if self.editorial else None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- building -------------------------------------------------------------------------------

    def build(
        self,
        view: Any,
        page: str,
        visitor: Visitor,
        subject: Any = None,
        query: str | None = None,
        cursor: str | Cursor | None = None,
    ) -> Fragment:
        """The next fragment of a page: the first when ``cursor`` is None."""
        started = time.perf_counter()
        if self._editorial is not None:
            layout = self._editorial.get(view, page, visitor.device)
        else:
            layout = self.layouts.get(page, visitor.device)
        deadline = started + layout.deadline_ms / 1000
        if isinstance(cursor, str):
            cursor = self.codec.decode(cursor)
        first = cursor.next if cursor is not None else 0
        page_started = cursor.started if cursor is not None else self.clock()
        if cursor is not None:
            subject, query = cursor.subject, cursor.query
        consistent = cursor is None or cursor.tag == _tag(view)
        last = min(len(layout.sections), first + layout.fragment_rows)
        engagement = self._engagement(visitor)
        base = getattr(view, "base", view)  # a client's view: its base version's arrays
        if base is None:
            raise RefreshError("no version to build pages from yet: nothing has been folded into the store")
        cat = catalogue(base)
        ctx = Context(view, cat, visitor, page, engagement, subject, query, layout.row_length)
        ctx.live = Live.of(view, cat)
        slots = [self._slot(spec) for spec in layout.sections[first:last]]
        triggered = self._triggered(ctx, engagement, page_started) if cursor is not None else None
        if triggered is not None:
            slots.insert(0, triggered)
        # leave the assembly its time before the deadline (a third of the page's at most)
        waits_end = deadline - min(self._reserve, layout.deadline_ms / 3000)
        self._generate(ctx, slots, waits_end)
        rows = [(s, self._eligible(ctx, s.row)) for s in slots if s.row is not None]
        fallbacks = [s.fallback for s in slots if s.fallback is not None]
        capacity = len(cat.present)
        if cursor is not None and consistent:  # titles on the page so far, by ordinal
            shown = cursor.shown(capacity)
        else:
            shown = np.zeros(capacity, dtype=bool)
        played = {e.title for e in engagement if e.action == "play"}
        heads = self._heads(ctx, rows, shown.copy())
        seen_by_profile = Seen.of(self._histories(ctx, heads, waits_end, fallbacks), played)
        assembling = time.perf_counter()
        now = self.clock()
        for slot, row in rows:
            if row.kind == "titles":  # dedup: only titles not shown higher up, then the ranked head
                fresh = row.ordinals[~shown[row.ordinals]]
                head = fresh[: (10 if row.numbered else slot.spec.length or ctx.length) * RANKED]
                if row.ranked and len(seen_by_profile):
                    head = head[self.ranker.rank(cat.ids[head], seen_by_profile, now)]
                row.ordinals = head[: 10 if row.numbered else slot.spec.length or ctx.length]
                shown[row.ordinals] = True
            else:
                row.ordinals = row.ordinals[: slot.spec.length or ctx.length]
        sections = self._assemble(ctx, rows)
        # what assembly took, smoothed: later pages stop waiting for sections three times that early
        # (and never less than 20 ms: a busy machine stalls a thread for that long now and then)
        self._took = 0.8 * self._took + 0.2 * (time.perf_counter() - assembling)
        self._reserve = max(0.02, 3 * self._took)
        next_cursor = None
        if last < len(layout.sections):
            next_cursor = self.codec.encode(
                Cursor(
                    page,
                    subject,
                    query,
                    view.version,
                    _tag(view),
                    getattr(view, "offset", None),
                    last,
                    page_started,
                    Cursor.pack_shown(shown),
                )
            )
        return Fragment(
            page,
            visitor.device,
            layout.kind,
            view.version,
            sections,
            fallbacks,
            round((time.perf_counter() - started) * 1000, 3),
            layout.deadline_ms,
            next_cursor,
            consistent,
        )

    def _slot(self, spec: SectionSpec) -> _Slot:
        return _Slot(spec, self.faults.wrap(spec.generator, self.generators[spec.generator]))

    def _engagement(self, visitor: Visitor) -> list[Engagement]:
        if visitor.profile is None or self.engagement is None:
            return []
        try:
            return self.engagement.recent(visitor.profile)
        except Exception as e:  # engagement is an input to personalisation, not a reason to fail
            log.warning("engagement of profile %s unavailable: %s", visitor.profile, e)
            return []

    def _triggered(self, ctx: Context, engagement: list[Engagement], since: float) -> _Slot | None:
        """A row for the genre of the newest title played or listed since the page started."""
        for e in engagement:
            if e.at < since:
                return None
            if e.action in ("play", "add"):
                o = int(ctx.catalogue.ordinals_of([e.title])[0])
                genres = list(ctx.catalogue.titles[o].genres) if o >= 0 else []
                if genres:
                    spec = SectionSpec("genre", f"More {genres[0]}", {"genre": genres[0]}, budget_ms=50)
                    return self._slot(spec)
        return None

    def _generate(self, ctx: Context, slots: list[_Slot], deadline: float) -> None:
        for slot in slots:  # the pool's sections start first, so they overlap with the inline ones
            if not slot.generator.inline:
                slot.started = time.perf_counter()
                slot.future = self._pool.submit(slot.generator.generate, ctx, slot.spec.params)
                slot.future.add_done_callback(self._remember_late(ctx, slot))
        for slot in slots:
            if slot.future is None:
                try:
                    slot.row = slot.generator.generate(ctx, slot.spec.params)
                except Exception as e:
                    self._fall_back(ctx, slot, f"failed: {e!r}")
                else:
                    self._remember(ctx, slot.spec, slot.row)
        for slot in slots:
            if slot.future is None:
                continue
            wait = min(slot.started + slot.spec.budget_ms / 1000, deadline) - time.perf_counter()
            try:
                slot.row = slot.future.result(timeout=max(wait, 0))
            except cf.TimeoutError:
                self._fall_back(ctx, slot, f"late: no answer within {slot.spec.budget_ms:g} ms")
            except Exception as e:
                self._fall_back(ctx, slot, f"failed: {e!r}")

    def _remember_late(self, ctx: Context, slot: _Slot) -> Callable[[cf.Future[Row | None]], None]:
        def done(future: cf.Future[Row | None]) -> None:
            if not future.cancelled() and future.exception() is None:
                self._remember(ctx, slot.spec, future.result())

        return done

    # --- fallbacks ------------------------------------------------------------------------------

    def _audience(self, ctx: Context, spec: SectionSpec, personal: bool) -> tuple[Any, ...]:
        v = ctx.visitor
        who = v.profile if personal else None
        return (ctx.page, spec.key, str(ctx.subject), ctx.query, v.country, v.maturity, who)

    def _remember(self, ctx: Context, spec: SectionSpec, row: Row | None) -> None:
        if row is None or not len(row.ordinals):
            return
        if row.kind != "titles":
            return
        key, tag = self._audience(ctx, spec, row.personalised), ctx.catalogue.state.tag
        with self._cache_lock:
            found = self._cache.get(key)
            if found is not None and found[0] == tag:  # already this version's answer: keep it fresh
                self._cache.move_to_end(key)
                return
        ids = ctx.catalogue.ids[row.ordinals[: ctx.length * CANDIDATES]]
        with self._cache_lock:
            self._cache[key] = (tag, row, ids)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _fall_back(self, ctx: Context, slot: _Slot, reason: str) -> None:
        spec = slot.spec
        with self._cache_lock:
            cached = self._cache.get(self._audience(ctx, spec, True)) or self._cache.get(
                self._audience(ctx, spec, False)
            )
        if cached is not None:
            _, row, ids = cached
            ords = ctx.catalogue.ordinals_of(ids)
            slot.row = Row(row.title, ords[ords >= 0], row.kind, row.personalised, row.numbered, False)
            served = "cached"
        else:
            variant = getattr(slot.generator, "unpersonalised", None)
            slot.row = variant(ctx, spec.params) if variant is not None else None
            served = "unpersonalised" if slot.row is not None else "omitted"
        slot.fallback = Fallback(spec.key, served, reason)
        log.info("section %s fell back (%s): %s", spec.key, served, reason)

    # --- personalisation and assembly -----------------------------------------------------------

    def _eligible(self, ctx: Context, row: Row) -> Row:
        """Only titles the visitor may watch here (all of them: dedup and ranking take what they need)."""
        if row.kind == "titles":
            v = ctx.visitor
            row.ordinals = ctx.live.eligible(ctx.catalogue, row.ordinals, v.country, v.maturity)
        return row

    def _heads(self, ctx: Context, rows: list[tuple[_Slot, Row]], shown: np.ndarray) -> list[np.ndarray]:
        """The candidates each ranked row may show, deduplicated in page order as if unranked: the
        titles whose history the ranker needs (one call for the whole fragment)."""
        heads = []
        for slot, row in rows:
            if row.kind != "titles":
                continue
            length = 10 if row.numbered else slot.spec.length or ctx.length
            fresh = row.ordinals[~shown[row.ordinals]]
            if row.ranked:
                heads.append(fresh[: length * RANKED])
            shown[fresh[:length]] = True
        return heads

    def _histories(
        self, ctx: Context, heads: list[np.ndarray], deadline: float, fallbacks: list[Fallback]
    ) -> Mapping[int, Any]:
        if self.history is None or ctx.visitor.profile is None or not heads:
            return {}
        ids = np.unique(ctx.catalogue.ids[np.concatenate(heads)]).tolist()
        if not ids:
            return {}
        budget = min(self.history_budget_ms / 1000, deadline - time.perf_counter())
        future = self._pool.submit(self.history.histories, ctx.visitor.profile, ids)
        try:
            return future.result(timeout=max(budget, 0))
        except cf.TimeoutError:
            reason = f"impression history late: no answer within {self.history_budget_ms:g} ms"
        except Exception as e:
            reason = f"impression history failed: {e!r}"
        fallbacks.append(Fallback("history", "unpersonalised", reason))
        return {}

    def _assemble(self, ctx: Context, rows: list[tuple[_Slot, Row]]) -> list[Section]:
        """The rows' cards for the visitor's device (their ordinals are final: deduplicated, ranked,
        cut), read in one bulk read per type for the whole fragment."""
        cards: dict[str, list[Card]] = {}
        for kind, reader_of, read in (
            ("titles", lambda: ctx.catalogue.titles, title_cards),
            ("stories", lambda: ctx.catalogue.state["Story"], story_cards),
        ):
            ords = [r.ordinals for _, r in rows if r.kind == kind]
            if ords and sum(len(o) for o in ords):
                live = ctx.live["Title" if kind == "titles" else "Story"]
                cards[kind] = read(reader_of(), np.concatenate(ords), ctx.visitor.device, live=live)
        sections, at = [], {"titles": 0, "stories": 0}
        for slot, row in rows:
            items = cards.get(row.kind, [])[at[row.kind] : at[row.kind] + len(row.ordinals)]
            at[row.kind] += len(row.ordinals)
            if not items:
                continue
            if row.numbered:
                for n, card in enumerate(items, 1):
                    card.rank = n
            fallback = slot.fallback.served if slot.fallback is not None else None
            title = slot.spec.title or row.title
            sections.append(Section(slot.spec.key, title, row.kind, items, row.personalised, fallback))
        return sections


def _tag(view: Any) -> str:
    """The state tag of the version ``view`` reads (its base's, for a client's view)."""
    return str(getattr(view, "base", view).tag)
