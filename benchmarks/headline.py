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

The pieces: ``headline_world.py`` (both sides set up), ``headline_pages.py``, ``headline_preview.py``,
``headline_memory.py``, ``headline_plots.py``. Plots go to ``--plots`` (``benchmarks/plots`` by
default). Needs NATS JetStream on 127.0.0.1:4222 and PostgreSQL on 127.0.0.1:5432. Prints one JSON
object. Run: ``marrow bench headline --json`` (``--quick``: a small catalogue, a 2 s ttl, fewer pages
— for tests).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the legacy harness beside this file

import headline_memory
import headline_plots
from headline_pages import pages
from headline_preview import preview_legacy, preview_marrow
from headline_world import World, close, setup

PLOTS = Path(__file__).resolve().parent / "plots"


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
