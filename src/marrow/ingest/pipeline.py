"""The ingestion pipeline: CMS events in, render-ready records out, one bulk update per channel.

For each channel (render-ready namespace) an event concerns (:data:`marrow.cms.events.CHANNELS`)::

    events ─ keep the newest per document, drop those the ledger has applied (idempotence)
           ─ pull          the documents at their revisions, and what they refer to   (pull.py)
           ─ rules         template defaults, derived values                           (rules.py)
           ─ validate      required fields, constraints                                (validate.py)
           ─ resolve       placeholders → names, synopses, cast, CDN URLs               (resolve.py)
           ─ render        render-ready records                                        (render.py)
           ─ write         one atomic bulk update through the channel's Writer → offset (writer.py)
           ─ ledger        each event's outcome: the offset, or its errors per field

A document with errors is not written — its last good record stays — and its errors are in the
report and the ledger; the others in the batch are written. A record is also held back when it
refers to a title that is not in the store and is not written in the same bulk update, so no
render-ready record points at nothing. If the write fails, nothing is recorded in the ledger and
:meth:`Ingestion.ingest` raises: the events are delivered again (see :mod:`marrow.ingest.worker`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from marrow.cms.events import CHANNELS, ContentEvent
from marrow.cms.store import CMS
from marrow.ingest.pull import pull
from marrow.ingest.render import RECORD_TYPES, render
from marrow.ingest.report import FieldError, Outcome, Report
from marrow.ingest.resolve import Cdn, Resolver
from marrow.ingest.rules import apply_rules
from marrow.ingest.validate import validate
from marrow.ingest.writer import Writer

__all__ = ["Ingestion"]


class Ingestion:
    """Runs the pipeline for batches of events, writing each channel through its writer.

    ``writers`` maps a channel (``live``, ``preview``) to its writer; events of channels without one
    are left alone (they stay unsettled in the outbox for an ingestion that has it). ``channels``
    says which channels each action concerns (default :data:`marrow.cms.events.CHANNELS`).
    """

    def __init__(
        self,
        cms: CMS,
        writers: Mapping[str, Writer],
        cdn: Cdn | None = None,
        clock: Callable[[], float] = time.time,
        channels: Mapping[str, tuple[str, ...]] = CHANNELS,
    ):
        self.cms, self.writers, self.cdn, self.clock = cms, dict(writers), cdn or Cdn(), clock
        self.channels = channels

    def ingest(self, events: Sequence[ContentEvent]) -> Report:
        """Ingest ``events`` (any number, any order, repeats allowed) into every channel they concern."""
        report = Report()
        for channel, writer in self.writers.items():
            concerned = [e for e in events if channel in self.channels.get(e.action, ())]
            if concerned:
                self._channel(channel, writer, concerned, report)
        return report

    def ingest_pending(self, limit: int = 100_000) -> Report:
        """Ingest every event the outbox has not settled yet, in one batch (the bulk path: a whole
        catalogue import is a few bulk updates, not one write per title)."""
        return self.ingest(self.cms.outbox.unsettled(limit))

    def _channel(self, channel: str, writer: Writer, events: Sequence[ContentEvent], report: Report) -> None:
        newest: dict[tuple[str, int], ContentEvent] = {}
        for e in sorted(events, key=lambda e: e.seq):
            newest[e.kind, e.id] = e
        applied = self.cms.ledger.entries(channel, list(newest))
        todo: list[ContentEvent] = []
        taken: set[int] = set()
        for e in events:
            entry = applied.get((e.kind, e.id))
            if (
                newest[e.kind, e.id].seq != e.seq
                or e.seq in taken
                or (entry is not None and entry.seq >= e.seq)
            ):
                # superseded in this batch, or applied before: a no-op, as a redelivery must be
                offset = entry.offset if entry is not None and entry.seq >= e.seq else None
                report.outcomes.append(Outcome(e, channel, offset, skipped=True))
            else:
                todo.append(e)
                taken.add(e.seq)
        if not todo:
            return
        pulled = pull(self.cms, channel, todo)
        resolver = Resolver(pulled, self.cdn)
        now = self.clock()
        upserts: dict[tuple[str, int], Any] = {}
        deletes: list[tuple[str, Any]] = []
        outcomes: dict[tuple[str, int], Outcome] = {}
        for e in todo:
            outcome = outcomes[e.kind, e.id] = Outcome(e, channel)
            if e.action == "unpublished":
                if e.kind in RECORD_TYPES:
                    deletes.append((RECORD_TYPES[e.kind], e.id))
                continue
            version = pulled.docs.get((e.kind, e.id))
            if version is None:
                outcome.errors.append(FieldError(e.kind, e.id, "revision", f"revision {e.revision} is gone"))
                continue
            doc = apply_rules(e.kind, version.doc, pulled)
            outcome.errors += validate(e.kind, e.id, doc)
            resolved = resolver.resolve(e.kind, e.id, doc)
            outcome.errors += resolved.errors
            if not outcome.errors and e.kind in RECORD_TYPES:
                published = version.published_at if version.published_at is not None else e.at
                upserts[e.kind, e.id] = render(e.kind, e.id, e.revision, doc, resolved.values, published, now)
        self._hold_back_dangling(channel, upserts, outcomes)
        offset = None
        if upserts or deletes:
            offset = writer.bulk_update(list(upserts.values()), deletes)
            report.offsets[channel] = offset
        for key, outcome in outcomes.items():
            if key in upserts or (outcome.event.action == "unpublished" and key[0] in RECORD_TYPES):
                outcome.offset = offset
        self.cms.ledger.record(
            channel, [(o.event, o.offset, [x.as_dict() for x in o.errors] or None) for o in outcomes.values()]
        )
        report.outcomes += outcomes.values()

    def _hold_back_dangling(
        self, channel: str, upserts: dict[tuple[str, int], Any], outcomes: dict[tuple[str, int], Outcome]
    ) -> None:
        """Drop records that refer to a title neither in this bulk update nor written before.

        "Written before" is what the ledger says of the title's last event in this channel: written
        (an offset) and not taken down. (A title whose last draft failed counts as missing in preview
        even if an older draft was written: conservative, and the editor sees why.)"""
        referred = {t for key, r in upserts.items() if key[0] != "title" for t in getattr(r, "titles", ())}
        unknown = [t for t in referred if ("title", t) not in upserts]
        if not unknown:
            return
        before = self.cms.ledger.entries(channel, [("title", t) for t in unknown])
        missing = {
            t
            for t in unknown
            if (e := before.get(("title", t))) is None or e.offset is None or e.action == "unpublished"
        }
        if not missing:
            return
        for key, record in list(upserts.items()):
            if key[0] == "title":
                continue
            bad = [t for t in getattr(record, "titles", ()) if t in missing]  # (a layout has none)
            if bad:
                del upserts[key]
                outcomes[key].errors += [
                    FieldError(key[0], key[1], "titles", f"title {t} has no render-ready record yet (its own "
                               f"ingestion failed, or it was never published): fix or publish it first")
                    for t in bad
                ]  # fmt: skip
