"""Ingestion into read-after-write namespaces: each channel's bulk update is one entry of its write
log, and a strong read at the offset ingestion returns sees the whole of it."""

from __future__ import annotations

import json
from pathlib import Path

from cms_content import NOW, article, seed
from marrow import records, store
from marrow.cms import CMS
from marrow.ingest import Ingestion, NamespaceWriter
from marrow.raw.namespace import Namespace


def test_a_save_is_read_back_from_the_preview_namespace_at_its_offset(tmp_path: Path) -> None:
    schema = store.Schema.from_classes(*records.TYPES)
    cms = CMS.open(f"sqlite:///{tmp_path}/cms.db")
    seed(cms)
    live, preview = Namespace(tmp_path / "live", schema), Namespace(tmp_path / "preview", schema)
    with live.writer() as lw, preview.writer() as pw, preview.client() as client:
        ingestion = Ingestion(
            cms, {"live": NamespaceWriter(lw), "preview": NamespaceWriter(pw)}, clock=lambda: NOW
        )
        first = ingestion.ingest_pending()
        first.raise_for_errors()
        assert client.view(offset=first.offsets["preview"])["Title"].get(10).name == "Dark"
        saved = cms.save("story", None, article("Dark, explained"), base=None, editor="ana")
        report = ingestion.ingest([saved.event])
        offset = report.offsets["preview"]
        assert offset == pw.offset and "live" not in report.offsets
        story = client.view(offset=offset)["Story"].get(1)
        assert story.headline == "Dark, explained" and story.revision == 1
        assert json.loads(story.body)[1]["name"] == "Dark"
        again = ingestion.ingest([saved.event])  # redelivered: nothing written twice
        assert again.offsets == {} and pw.offset == offset
    cms.close()
