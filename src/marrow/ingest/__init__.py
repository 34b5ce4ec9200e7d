"""Ingestion: CMS events in, render-ready records out (DESIGN.md §5).

The pipeline's steps are separate, testable functions — :func:`pull`, :func:`apply_rules`,
:func:`validate`, :class:`Resolver`, :func:`render` — run in order by :class:`Ingestion`, which ends
each batch with one atomic bulk update per channel through a :class:`Writer` and returns a
:class:`Report` (the offsets, and every error per field). :class:`Worker` feeds it from the event bus
and retries what fails::

    from marrow.ingest import Ingestion, NamespaceWriter

    live, preview = Namespace("var/live", schema), Namespace("var/preview", schema)   # marrow.raw
    channels = {"live": NamespaceWriter(live.writer()), "preview": NamespaceWriter(preview.writer())}
    ingestion = Ingestion(cms, channels)
    report = ingestion.ingest([saved.event])
    report.raise_for_errors()
"""

from marrow.ingest.pipeline import Ingestion
from marrow.ingest.pull import Pulled, pull
from marrow.ingest.render import RECORD_TYPES, render
from marrow.ingest.report import FieldError, Outcome, Report
from marrow.ingest.resolve import IMAGE_SIZES, Cdn, Resolved, Resolver, rich_text
from marrow.ingest.rules import TEMPLATES, Availability, Template, apply_rules, availability, featured_titles
from marrow.ingest.settings import IngestSettings
from marrow.ingest.validate import validate
from marrow.ingest.worker import Worker
from marrow.ingest.writer import NamespaceWriter, Writer

__all__ = [
    "IMAGE_SIZES",
    "RECORD_TYPES",
    "TEMPLATES",
    "Availability",
    "Cdn",
    "FieldError",
    "IngestSettings",
    "Ingestion",
    "NamespaceWriter",
    "Outcome",
    "Pulled",
    "Report",
    "Resolved",
    "Resolver",
    "Template",
    "Worker",
    "Writer",
    "apply_rules",
    "availability",
    "featured_titles",
    "pull",
    "render",
    "rich_text",
    "validate",
]
