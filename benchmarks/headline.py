"""Headline benchmark (issue 8): the legacy read path and Marrow side by side, same data and layouts.

Both sides get the same CMS content (``marrow.cms.sample.generate``: 18,000 titles, 5,000 stories)
through the same ingestion pipeline. Marrow's writer is a read-after-write namespace
(``marrow.ingest.NamespaceWriter``; folded once after the import) read by a local client in this
process; the legacy side publishes to NATS JetStream, a consumer process writes PostgreSQL, and a
page data service process serves keys from its near-cache (``benchmarks/legacy``, DESIGN.md §5).

* ``page_speedup_p50`` / ``page_speedup_p99`` — a home page (every fragment, following the cursor)
  for signed-out visitors over a mix of countries, devices and maturity settings: legacy p50 (p99) /
  Marrow p50 (p99). Marrow is ``marrow.pages.PageBuilder`` over the client's views; legacy is
  :class:`legacy.pages.LegacyPageBuilder` with the same layouts and assembly, fetching a fragment's
  row lists in one call and its records in a second (``fragment`` batching, the legacy path at its
  best); ``*_per_section`` is the same with two calls per section. Sides alternate in rounds; every
  page is built once on each side first (warm caches) and the two sides' pages are compared:
  ``pages_identical`` must be true. ``first_fragment_*`` time the first fragment alone.
* ``preview_legacy_p50_s`` — an editor saves a story's headline (CMS save + ingestion) → the story's
  preview (its record and page, through the page data service) shows it: NATS → consumer →
  PostgreSQL → the near-cache's timer. Edits fall at random moments within one ttl of the keys being
  cached, several in flight at once (each key has its own timer), so the run measures the real
  distribution at the real ttl (30 s ± 10 % by default; ``--ttl`` shortens it, and then the figure
  is for that ttl: the wait for the timer scales with it, the pipeline does not).
  ``legacy_pipeline_p50_ms``: save → stored in PostgreSQL.
* ``preview_marrow_p50_ms`` / ``preview_marrow_p99_ms`` — the same save → a strong read at the save's
  offset shows it (record and story page built); ``preview_marrow_eventual_*``: → an eventual read
  shows it (polled).
* ``memory_ratio_vs_json`` — the read dataset (every render-ready record): the Marrow store / the
  records as JSON; also vs Python objects and Parquet + zstd (``headline_memory.py``), and the legacy
  table's size in PostgreSQL.
* ``network_calls_per_page_*`` — legacy: calls to the page data service plus the table reads its
  misses caused; Marrow: socket calls counted while its pages were built (none expected).

Plots go to ``--plots`` (``benchmarks/plots`` by default). Needs NATS JetStream on 127.0.0.1:4222
and PostgreSQL on 127.0.0.1:5432. Prints one JSON object. Run: ``marrow bench headline --json``
(``--quick``: a small catalogue, a 2 s ttl, fewer pages — for tests).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the legacy harness beside this file

import headline_memory
import headline_plots
from legacy import keys
from legacy.pages import LegacyPageBuilder
from legacy.service import PageDataClient
from legacy.stack import LegacyStack
from marrow import records, store
from marrow.cms import CMS, SQLiteDatabase
from marrow.cms import sample as cms_sample
from marrow.cms.events import CHANNELS
from marrow.ingest import Ingestion, NamespaceWriter
from marrow.pages import Fragment, Layouts, PageBuilder, Visitor
from marrow.pages.views import ClientViews
from marrow.raw import LocalClient
from marrow.raw.namespace import Namespace

PLOTS = Path(__file__).resolve().parent / "plots"
#: the legacy channel takes what the preview channel takes (drafts and published content)
LEGACY_CHANNELS = {action: ("legacy",) for action, channels in CHANNELS.items() if "preview" in channels}
_MATURITY = ([18] * 6) + [16, 13, 13, 7]


class Recorded(NamespaceWriter):
    """Marrow's ingestion writer, keeping the newest record per key (the memory figures' dataset)."""

    def __init__(self, writer: Any):
        super().__init__(writer)
        self.latest: dict[tuple[str, int], Any] = {}

    def bulk_update(self, upserts: Sequence[Any], deletes: Sequence[tuple[str, Any]] = ()) -> int:
        offset = super().bulk_update(upserts, deletes)
        for r in upserts:
            self.latest[type(r).__name__, r.id] = r
        for key in deletes:
            self.latest.pop(key, None)
        return offset


@dataclass
class World:
    cms: CMS
    namespace: Namespace
    recorded: Recorded
    ingestion: Ingestion
    client: LocalClient
    views: ClientViews
    builder: PageBuilder
    legacy: LegacyStack
    legacy_ingestion: Ingestion
    legacy_builder: LegacyPageBuilder
    legacy_per_section: LegacyPageBuilder


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def setup(
    directory: Path, titles: int, stories: int, ttl: float, jitter: float, out: dict[str, Any]
) -> World:
    t = time.perf_counter()
    sample = cms_sample.generate(titles=titles, stories=stories)
    out["generate_s"] = round(time.perf_counter() - t, 2)
    cms = CMS(SQLiteDatabase(directory / "cms.db"))
    dates = {("story", i): float(p) for i, p in sample.published.items()}
    cms.import_documents(sample.documents(), editor="import", published_at=dates)
    events = cms.outbox.unsettled(10**7)

    namespace = Namespace(directory / "content", store.Schema.from_classes(*records.TYPES))
    writer = namespace.writer(fold=False)  # folded once below: no version change while pages are timed
    recorded = Recorded(writer)
    ingestion = Ingestion(cms, {"preview": recorded})
    t = time.perf_counter()
    ingestion.ingest(events).raise_for_errors()
    assert writer.folder is not None
    report = writer.folder.fold()
    assert report is not None
    out["marrow_ingest_s"] = round(time.perf_counter() - t, 2)
    client = namespace.client()
    client.consumer.wait_for(report.version)

    legacy = LegacyStack(ttl=ttl, jitter=jitter)
    try:
        assert legacy.writer is not None and legacy.client is not None
        legacy_ingestion = Ingestion(cms, {"legacy": legacy.writer}, channels=LEGACY_CHANNELS)
        t = time.perf_counter()
        offset = legacy_ingestion.ingest(events).offsets["legacy"]
        out["legacy_publish_s"] = round(time.perf_counter() - t, 2)
        legacy.wait_applied(offset)
        out["legacy_ingest_s"] = round(time.perf_counter() - t, 2)
        out["legacy_keys"] = legacy.table.count()
    except BaseException:
        legacy.close()
        raise
    layouts = Layouts.load()
    return World(
        cms,
        namespace,
        recorded,
        ingestion,
        client,
        ClientViews(client),
        PageBuilder(layouts),
        legacy,
        legacy_ingestion,
        LegacyPageBuilder(layouts, legacy.client),
        LegacyPageBuilder(layouts, legacy.client, batching="section"),
    )


def close(world: World) -> None:
    world.recorded.writer.close()
    world.builder.close()
    world.client.close()
    world.legacy.close()
    world.cms.close()


# --- pages -----------------------------------------------------------------------------------------


def visitors(count: int, countries: Sequence[str], seed: int) -> list[Visitor]:
    rng = random.Random(seed)
    return [
        Visitor(rng.choice(countries), rng.choice(records.DEVICES), rng.choice(_MATURITY))
        for _ in range(count)
    ]


def marrow_page(world: World, visitor: Visitor) -> tuple[float, float, list[Fragment]]:
    """(whole page ms, first fragment ms, fragments) — the fragments read the view the first one read."""
    t = time.perf_counter()
    view = world.views.current()
    fragments = [world.builder.build(view, "home", visitor)]
    first = time.perf_counter() - t
    while fragments[-1].cursor:
        fragments.append(world.builder.build(view, "home", visitor, cursor=fragments[-1].cursor))
    return (time.perf_counter() - t) * 1000, first * 1000, fragments


def legacy_page(builder: LegacyPageBuilder, visitor: Visitor) -> tuple[float, float, list[Fragment]]:
    t = time.perf_counter()
    fragments = [builder.build("home", visitor)]
    first = time.perf_counter() - t
    while fragments[-1].cursor:
        fragments.append(builder.build("home", visitor, cursor=fragments[-1].cursor))
    return (time.perf_counter() - t) * 1000, first * 1000, fragments


def shape(fragments: list[Fragment]) -> list[Any]:
    """What a visitor sees of a page: sections and their cards (not timings, cursors or versions)."""
    return [
        (s.key, s.title, s.kind, [(c.id, c.name, c.image, c.rank, c.summary) for c in s.items])
        for f in fragments
        for s in f.sections
    ]


@contextmanager
def socket_calls() -> Iterator[list[int]]:
    """Count connects, sends and receives on Python sockets in this process while inside."""
    counter = [0]
    names = ("connect", "connect_ex", "send", "sendall", "sendto", "recv", "recv_into")
    originals = {n: getattr(socket.socket, n) for n in names}

    def counting(name: str) -> Any:
        original = originals[name]

        def call(self: socket.socket, *args: Any, **kw: Any) -> Any:
            counter[0] += 1
            return original(self, *args, **kw)

        return call

    for n in names:
        setattr(socket.socket, n, counting(n))
    try:
        yield counter
    finally:
        for n, f in originals.items():
            setattr(socket.socket, n, f)


def pages(
    world: World, count: int, rounds: int, per_round: int, seed: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    countries = sorted({c for t in world.client.view()["Title"] for c in t.countries})
    people = visitors(count, countries, seed)
    out: dict[str, Any] = {"visitors": count, "countries": len(countries)}
    mismatches = 0
    for v in people:  # warm both sides (catalogue masks, near-cache keys) and compare what they show
        _, _, ours = marrow_page(world, v)
        _, _, theirs = legacy_page(world.legacy_builder, v)
        _, _, per_section = legacy_page(world.legacy_per_section, v)
        mismatches += shape(ours) != shape(theirs) or shape(ours) != shape(per_section)
    out["pages_identical"] = mismatches == 0
    out["pages_differing"] = mismatches
    sides = {
        "marrow": lambda v: marrow_page(world, v),
        "legacy": lambda v: legacy_page(world.legacy_builder, v),
        "legacy_per_section": lambda v: legacy_page(world.legacy_per_section, v),
    }
    samples: dict[str, list[float]] = {f"page_ms_{s}": [] for s in sides} | {
        f"first_ms_{s}": [] for s in sides
    }
    calls = {s: 0 for s in sides} | {f"{s}_misses": 0 for s in sides} | {f"{s}_miss_calls": 0 for s in sides}
    keys_asked = {s: 0 for s in sides}
    sockets = {s: 0 for s in sides}
    ratios: list[float] = []
    rng = random.Random(seed + 1)
    client = world.legacy.client
    assert client is not None
    for r in range(rounds):
        chosen = [rng.choice(people) for _ in range(per_round)]
        medians = {}
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for side in order:
            before = (client.calls, client.misses, client.miss_calls, client.keys)
            page_ms = []
            with socket_calls() as counted:
                for v in chosen:
                    total, first, _ = sides[side](v)
                    page_ms.append(total)
                    samples[f"first_ms_{side}"].append(first)
            sockets[side] += counted[0]
            samples[f"page_ms_{side}"] += page_ms
            medians[side] = statistics.median(page_ms)
            calls[side] += client.calls - before[0]
            calls[f"{side}_misses"] += client.misses - before[1]
            calls[f"{side}_miss_calls"] += client.miss_calls - before[2]
            keys_asked[side] += client.keys - before[3]
        ratios.append(medians["legacy"] / medians["marrow"])
    n = rounds * per_round
    for side in sides:
        suffix = side.removeprefix("legacy").removeprefix("_") if side != "marrow" else "marrow"
        name = "legacy" if side == "legacy" else suffix if side == "marrow" else f"legacy_{suffix}"
        values, firsts = samples[f"page_ms_{side}"], samples[f"first_ms_{side}"]
        out[f"page_p50_ms_{name}"] = round(statistics.median(values), 3)
        out[f"page_p99_ms_{name}"] = round(_percentile(values, 0.99), 3)
        out[f"first_fragment_p50_ms_{name}"] = round(statistics.median(firsts), 3)
        out[f"first_fragment_p99_ms_{name}"] = round(_percentile(firsts, 0.99), 3)
        out[f"socket_calls_per_page_{name}"] = round(sockets[side] / n, 2)
        if side != "marrow":
            out[f"kv_calls_per_page_{name}"] = round(calls[side] / n, 2)
            out[f"keys_per_page_{name}"] = round(keys_asked[side] / n, 1)
            out[f"cache_misses_per_page_{name}"] = round(calls[f"{side}_misses"] / n, 3)
            out[f"network_calls_per_page_{name}"] = round((calls[side] + calls[f"{side}_miss_calls"]) / n, 2)
    out["network_calls_per_page_marrow"] = out["socket_calls_per_page_marrow"]
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        marrow = _percentile(samples["page_ms_marrow"], q)
        out[f"page_speedup_{label}"] = round(_percentile(samples["page_ms_legacy"], q) / marrow, 1)
        out[f"page_speedup_{label}_per_section"] = round(
            _percentile(samples["page_ms_legacy_per_section"], q) / marrow, 1
        )
        first = _percentile(samples["first_ms_marrow"], q)
        out[f"first_fragment_speedup_{label}"] = round(_percentile(samples["first_ms_legacy"], q) / first, 1)
    out["page_speedup_by_round"] = [round(x, 1) for x in ratios]
    return out, samples


# --- preview ---------------------------------------------------------------------------------------


def _edit(cms: CMS, story: int, headline: str) -> Any:
    item = cms.get("story", story)
    doc = msgspec.structs.replace(item.doc, headline=headline)  # type: ignore[arg-type]
    return lambda: cms.save("story", story, doc, base=item.revision, editor="bench")  # type: ignore[arg-type]


def preview_marrow(
    world: World, stories: list[int], edits: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Saves alternate between a strong read at the save's offset and polling an eventual read."""
    strong: list[float] = []
    eventual: list[float] = []
    visitor = Visitor("US", "web", 18)
    for i in range(edits):
        story, headline = stories[i % len(stories)], f"Marrow edit {i}"
        save = _edit(world.cms, story, headline)
        t = time.perf_counter()
        event = save().event
        offset = world.ingestion.ingest([event]).offsets["preview"]
        if i % 2 == 0:
            view = world.views.current(offset)
        else:
            view = world.client.view()
            while view["Story"].get(story).headline != headline:
                time.sleep(0.0002)
                view = world.client.view()
        record = view["Story"].get(story)
        world.builder.build(view, "story", visitor, subject=story)
        (strong if i % 2 == 0 else eventual).append(time.perf_counter() - t)
        assert record.headline == headline
    out = {
        "preview_marrow_p50_ms": round(statistics.median(strong) * 1000, 2),
        "preview_marrow_p99_ms": round(_percentile(strong, 0.99) * 1000, 2),
        "preview_marrow_eventual_p50_ms": round(statistics.median(eventual) * 1000, 2),
        "preview_marrow_eventual_p99_ms": round(_percentile(eventual, 0.99) * 1000, 2),
        "preview_marrow_edits": edits,
    }
    return out, {"preview_s_marrow_strong": strong, "preview_s_marrow_eventual": eventual}


def preview_legacy(
    world: World, stories: list[int], ttl: float, seed: int
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Each story's preview is open (its keys cached) when the run starts; each story is edited once,
    at a random moment within one ttl; every 20 ms the open previews are read again."""
    legacy = world.legacy
    poller = PageDataClient("127.0.0.1", legacy.port)  # the editors' browsers: a connection of their own
    decode = msgspec.json.Decoder(records.Story).decode
    visitor = Visitor("US", "web", 18)
    poller.get_many([keys.record_key("Story", s) for s in stories])
    rng = random.Random(seed)
    start = time.monotonic()
    schedule = sorted((start + rng.uniform(0, ttl), s) for s in stories)
    pending: dict[int, tuple[float, str, int]] = {}
    stored: dict[int, float] = {}
    visible: dict[int, float] = {}
    deadline = start + 2.2 * ttl + 60
    while (schedule or pending) and time.monotonic() < deadline:
        if schedule and time.monotonic() >= schedule[0][0]:
            story = schedule.pop(0)[1]
            headline = f"Legacy edit of {story}"
            save = _edit(world.cms, story, headline)
            t = time.monotonic()
            offset = world.legacy_ingestion.ingest([save().event]).offsets["legacy"]
            pending[story] = (t, headline, offset)
            continue
        if pending:
            applied = legacy.applied()
            shown = poller.get_many([keys.record_key("Story", s) for s in pending])
            now = time.monotonic()
            for story, (t, headline, offset) in list(pending.items()):
                if story not in stored and applied >= offset:
                    stored[story] = now - t
                body = shown[keys.record_key("Story", story)]
                if body is not None and decode(body).headline == headline:
                    visible[story] = now - t
                    del pending[story]
                    # the preview as the editor sees it: the record and the story page, both new
                    assert world.legacy_builder.record("Story", story).headline == headline
                    world.legacy_builder.build("story", visitor, subject=story)
        time.sleep(0.02)
    poller.close()
    waits = list(visible.values())
    out = {
        "preview_legacy_p50_s": round(statistics.median(waits), 2) if waits else None,
        "preview_legacy_p99_s": round(_percentile(waits, 0.99), 2) if waits else None,
        "preview_legacy_min_s": round(min(waits), 2) if waits else None,
        "preview_legacy_max_s": round(max(waits), 2) if waits else None,
        "preview_legacy_edits": len(stories),
        "preview_legacy_not_visible": len(pending),
        "legacy_pipeline_p50_ms": round(statistics.median(stored.values()) * 1000, 1) if stored else None,
        "legacy_pipeline_p99_ms": round(_percentile(list(stored.values()), 0.99) * 1000, 1)
        if stored
        else None,
    }
    return out, {"preview_s_legacy": waits}


# --- the run ---------------------------------------------------------------------------------------


def run(
    titles: int,
    stories: int,
    ttl: float,
    jitter: float,
    visitor_count: int,
    rounds: int,
    per_round: int,
    marrow_edits: int,
    legacy_edits: int,
    plots: Path | None,
    seed: int = 8,
) -> dict[str, Any]:
    out: dict[str, Any] = {"titles": titles, "stories": stories, "legacy_ttl_s": ttl, "legacy_jitter": jitter}
    out["load_average_start"] = round(os.getloadavg()[0], 2)
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        world = setup(Path(tmp), titles, stories, ttl, jitter, out)
        try:
            figures, got = pages(world, visitor_count, rounds, per_round, seed)
            out.update(figures)
            samples.update(got)
            out.update(_memory(world))
            newest = [
                int(s.id) for s in sorted(world.client.view()["Story"], key=lambda s: (-s.published, s.id))
            ]
            figures, got = preview_marrow(world, newest[:10], marrow_edits)
            out.update(figures)
            samples.update(got)
            figures, got = preview_legacy(world, newest[10 : 10 + legacy_edits], ttl, seed)
            out.update(figures)
            samples.update(got)
            out["legacy_near_cache"] = world.legacy.stats()
        finally:
            close(world)
    out["load_average_end"] = round(os.getloadavg()[0], 2)
    if plots is not None:
        out["plots"] = headline_plots.save(plots, out, samples)
    return out


def _memory(world: World) -> dict[str, Any]:
    by_type: dict[str, list[bytes]] = {}
    for (name, _), record in world.recorded.latest.items():
        by_type.setdefault(name, []).append(msgspec.json.encode(record))
    version = world.client.view().base.version
    figures = headline_memory.measure(world.namespace.blob_dir / f"snapshot-{version}", by_type)
    figures["legacy_table_bytes"] = world.legacy.table.size_bytes()
    return figures


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--titles", type=int, default=18_000)
    p.add_argument("--stories", type=int, default=5_000)
    p.add_argument("--ttl", type=float, default=30.0, help="the near-cache's refresh period, seconds")
    p.add_argument("--jitter", type=float, default=0.1, help="± share of the ttl, drawn per refresh")
    p.add_argument("--visitors", type=int, default=150, help="distinct visitors whose home pages are built")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--pages", type=int, default=60, help="home pages per side per round")
    p.add_argument("--marrow-edits", type=int, default=200)
    p.add_argument("--legacy-edits", type=int, default=30)
    p.add_argument("--plots", type=Path, default=PLOTS, help="where to write the PNGs")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--quick", action="store_true", help="a small run (tests): 600 titles, a 2 s ttl")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still remove streams and tables
    if a.quick:
        a.titles, a.stories, a.ttl, a.visitors, a.rounds, a.pages = 600, 200, 2.0, 12, 2, 6
        a.marrow_edits, a.legacy_edits = 10, 4
    result = run(
        a.titles,
        a.stories,
        a.ttl,
        a.jitter,
        a.visitors,
        a.rounds,
        a.pages,
        a.marrow_edits,
        a.legacy_edits,
        None if a.no_plots else a.plots,
    )
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
