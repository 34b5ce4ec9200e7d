"""Ingestion benchmark: the sample catalogue through the CMS and the pipeline, and an editor's save.

* ``generate_s`` — :func:`marrow.cms.sample.generate` at the seed's scale (18,000 titles, 5,000
  stories, 12,000 people, ~28,000 assets);
* ``import_s`` — the whole sample into the CMS in one transaction (SQLite, a temporary file);
  ``import_s_postgres`` the same into the local PostgreSQL (``--postgres``), its peer;
* ``ingest_records_per_s`` — every event of the import through the pipeline into both channels
  (live, preview): render-ready records written per second, wall clock, the writer included;
  ``pipeline_records_per_s`` the same without the writer's time; ``bulk_updates`` how many writes;
* ``one_by_one_records_per_s`` — the peer, in the same run: the same pipeline on the first
  ``--peer`` titles with one write per title (one event per batch), as an ingestion without a bulk
  path would do;
* ``save_ingest_p50_ms`` / ``p99`` — an editor's save of one story (CMS save + the pipeline for its
  event + the preview write), over ``--edits`` edits; ``save_ingest_without_writer_*`` the same less
  the writer's time (what the CMS and the pipeline cost).

The writer is :class:`marrow.ingest.testing.StateWriter` (an in-memory store state, one incremental
cycle per bulk update): a test helper standing in for the read-after-write writer, which is not wired
in yet. Its figures say what the pipeline costs, not what a durable write will. Prints one JSON
object. Run: ``marrow bench ingest --json``.
"""

from __future__ import annotations

import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from marrow.cms import CMS, ContentEvent, PostgresDatabase, SQLiteDatabase
from marrow.cms import sample as cms_sample
from marrow.ingest import Ingestion
from marrow.ingest.testing import StateWriter

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"


class TimedWriter(StateWriter):
    """The test writer, timing its own bulk updates."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0

    def bulk_update(self, upserts: Any, deletes: Any = ()) -> int:
        t = time.perf_counter()
        try:
            return super().bulk_update(upserts, deletes)
        finally:
            self.seconds += time.perf_counter() - t


def _import(cms: CMS, sample: cms_sample.Sample) -> float:
    dates = {("story", i): float(t) for i, t in sample.published.items()}
    t = time.perf_counter()
    cms.import_documents(sample.documents(), editor="import", published_at=dates)
    return time.perf_counter() - t


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(titles: int, stories: int, edits: int, peer: int, postgres: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"titles": titles, "stories": stories, "writer": "StateWriter (test helper)"}
    t = time.perf_counter()
    sample = cms_sample.generate(titles=titles, stories=stories)
    out["generate_s"] = round(time.perf_counter() - t, 2)
    out["documents"] = len(sample)
    with tempfile.TemporaryDirectory() as tmp:
        cms = CMS(SQLiteDatabase(Path(tmp) / "cms.db"))
        out["import_s"] = round(_import(cms, sample), 2)
        events = cms.outbox.unsettled(10**7)
        live, preview = TimedWriter(), TimedWriter()
        ingestion = Ingestion(cms, {"live": live, "preview": preview})
        t = time.perf_counter()
        report = ingestion.ingest(events)
        wall = time.perf_counter() - t
        written = sum(n for w in (live, preview) for n, _ in w.updates)
        out["ingest_errors"] = len(report.errors)
        out["ingest_events"] = len(events)
        out["ingest_s"] = round(wall, 2)
        out["ingest_records_per_s"] = round(written / wall)
        out["ingest_events_per_s"] = round(len(events) / wall)
        out["pipeline_records_per_s"] = round(written / (wall - live.seconds - preview.seconds))
        out["bulk_updates"] = len(live.updates) + len(preview.updates)
        out.update(_one_by_one(cms, events, peer, written / wall))
        out.update(_saves(cms, ingestion, edits))
        cms.close()
    if postgres:
        db = PostgresDatabase(POSTGRES_DSN, schema=f"bench_{secrets.token_hex(4)}")
        try:
            out["import_s_postgres"] = round(_import(CMS(db), sample), 2)
        finally:
            db.drop()
            db.close()
    return out


def _one_by_one(cms: CMS, events: list[ContentEvent], peer: int, bulk_rate: float) -> dict[str, Any]:
    """The peer: titles ingested one write each, into a fresh ledger channel and writer."""
    titles = [e for e in events if e.kind == "title"][:peer]
    # A channel of its own (its own ledger entries and writer); titles resolve their cast and
    # artwork from the CMS, so they need no earlier writes.
    ingestion = Ingestion(cms, {"peer": StateWriter()}, channels={"published": ("peer",)})
    t = time.perf_counter()
    for e in titles:
        ingestion.ingest([e])
    rate = len(titles) / (time.perf_counter() - t)
    return {
        "one_by_one_titles": len(titles),
        "one_by_one_records_per_s": round(rate),
        "bulk_speedup_vs_one_by_one": round(bulk_rate / rate, 1),
    }


def _saves(cms: CMS, ingestion: Ingestion, edits: int) -> dict[str, Any]:
    """An editor's saves: one story edited ``edits`` times, each save ingested at once; with and
    without the time the (test) writer took."""
    story_id = 1
    item = cms.get("story", story_id)
    doc, revision = item.doc, item.revision
    writers = [w for w in ingestion.writers.values() if isinstance(w, TimedWriter)]
    times, without_writer = [], []
    for i in range(edits):
        doc = msgspec.structs.replace(doc, headline=f"Edit {i}: {doc.headline.split(': ', 1)[-1]}")  # type: ignore[arg-type,union-attr]
        writing = sum(w.seconds for w in writers)
        t = time.perf_counter()
        saved = cms.save("story", story_id, doc, base=revision, editor="bench")  # type: ignore[arg-type]
        report = ingestion.ingest([saved.event])
        elapsed = time.perf_counter() - t
        times.append(elapsed * 1000)
        without_writer.append((elapsed - (sum(w.seconds for w in writers) - writing)) * 1000)
        assert not report.errors and "preview" in report.offsets
        revision = saved.item.revision
    return {
        "save_ingest_p50_ms": round(statistics.median(times), 2),
        "save_ingest_p99_ms": round(_percentile(times, 0.99), 2),
        "save_ingest_without_writer_p50_ms": round(statistics.median(without_writer), 2),
        "save_ingest_without_writer_p99_ms": round(_percentile(without_writer, 0.99), 2),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--titles", type=int, default=18_000)
    p.add_argument("--stories", type=int, default=5_000)
    p.add_argument("--edits", type=int, default=200)
    p.add_argument("--peer", type=int, default=1_000, help="titles ingested one write each (the peer)")
    p.add_argument("--postgres", action="store_true", help="also import into the local PostgreSQL")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = run(a.titles, a.stories, a.edits, a.peer, a.postgres)
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
