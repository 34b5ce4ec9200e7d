"""The headline benchmark's two sides, set up on the same data: what ``headline.py`` measures.

:func:`setup` generates the sample, imports it into one CMS, and ingests every event twice — into a
read-after-write namespace (Marrow's side, folded once, read by a local client here) and into the
legacy stream (``legacy.stack.LegacyStack``), waiting until the legacy consumer has stored it all.
Each side has its own ingestion channel, so the CMS's ledger keeps their progress apart.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legacy.pages import LegacyPageBuilder
from legacy.stack import LegacyStack
from marrow import records, store
from marrow.cms import CMS, SQLiteDatabase
from marrow.cms import sample as cms_sample
from marrow.cms.events import CHANNELS
from marrow.ingest import Ingestion, NamespaceWriter
from marrow.pages import Layouts, PageBuilder
from marrow.pages.views import ClientViews
from marrow.raw import LocalClient
from marrow.raw.namespace import Namespace

#: the legacy channel takes what the preview channel takes (drafts and published content)
LEGACY_CHANNELS = {action: ("legacy",) for action, channels in CHANNELS.items() if "preview" in channels}


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
    """Both sides, ready: Marrow's writer, client and builder; the legacy stack and its builders."""

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


def percentile(values: Sequence[float], q: float) -> float:
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
        report_legacy = legacy_ingestion.ingest(events)
        report_legacy.raise_for_errors()
        offset = report_legacy.offsets["legacy"]
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
