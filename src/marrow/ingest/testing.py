"""Helpers for testing ingestion without the read-after-write layer.

:class:`StateWriter` is a **test helper**, not a writer for production: it satisfies
:class:`~marrow.ingest.writer.Writer` by applying each bulk update as an incremental cycle of an
in-memory store state, in this process, with no durability and no log. The real writer
(``marrow.raw``) replaces it; until that is wired in, tests, the editor's tests and the ingestion
benchmark use this one::

    writer = StateWriter()
    offset = writer.bulk_update([records.Title(...)])
    writer.read(offset)["Title"].get(80000001).name
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from marrow import records
from marrow.errors import MarrowError
from marrow.store import ReadState, Schema, WriteState

__all__ = ["StateWriter"]


class StateWriter:
    """A Writer over an in-memory store state: each bulk update is one cycle, its offset the cycle's
    number. All or nothing: an update that the store refuses (a bad record) changes nothing."""

    def __init__(self, schema: Schema | None = None):
        self.schema = schema or Schema.from_classes(*records.TYPES)
        self._write = WriteState(self.schema)
        self._state = ReadState.from_snapshot(self._write.commit(version=0).snapshot())
        self.offset = 0
        self.updates: list[tuple[int, int]] = []  # (upserts, deletes) per bulk update, for tests
        self._lock = threading.Lock()

    def bulk_update(self, upserts: Sequence[Any], deletes: Sequence[tuple[str, Any]] = ()) -> int:
        with self._lock:
            ws = self._write
            ws.keep_previous()
            try:
                for type_name, key in deletes:
                    ws.delete(type_name, key)
                for record in upserts:
                    name = ws.type_of(record)
                    ws.delete(name, ws.key_of(record, name))
                    ws.add(record, name)
                cycle = ws.commit(version=self.offset + 1)
            except (MarrowError, TypeError, ValueError):
                ws.rollback()
                raise
            delta = cycle.delta()
            assert delta is not None
            self._state = self._state.apply_delta(delta)
            self.offset += 1
            self.updates.append((len(upserts), len(deletes)))
            return self.offset

    def read(self, offset: int | None = None) -> ReadState:
        """The state after the write at ``offset`` (a strong read at that offset; here every write
        is visible at once). An offset this writer has not reached is an error."""
        with self._lock:
            if offset is not None and offset > self.offset:
                raise MarrowError(f"offset {offset} has not been written here (the last is {self.offset})")
            return self._state

    def views(self) -> WriterViews:
        """What the visitor site reads from (:class:`marrow.pages.views.Views`): this writer's state."""
        return WriterViews(self)


class WriterViews:
    """A :class:`StateWriter`'s state as the site's ``Views``: every read sees every write."""

    def __init__(self, writer: StateWriter):
        self.writer = writer

    def current(self, offset: int | None = None) -> ReadState:
        return self.writer.read(offset)

    def at(self, tag: str, offset: int | None = None) -> ReadState | None:
        state = self.writer.read()
        return state if state.tag == tag else None
