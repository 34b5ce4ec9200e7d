"""The last step of ingestion: one atomic bulk update of render-ready records through a writer.

A namespace's read-after-write writer (``marrow.raw``, DESIGN.md §4) is one through
:class:`NamespaceWriter`; :class:`marrow.ingest.testing.StateWriter` is a small in-memory one for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from marrow.raw import Delete, Upsert
from marrow.raw import Writer as RawWriter

__all__ = ["NamespaceWriter", "Writer"]


class Writer(Protocol):
    """Writes render-ready records to one namespace."""

    def bulk_update(self, upserts: Sequence[Any], deletes: Sequence[tuple[str, Any]] = ()) -> int:
        """Add or replace ``upserts`` (records of :mod:`marrow.records`, by primary key) and remove
        ``deletes`` (``(type name, primary key)``), all or nothing. Returns the offset of the write:
        a strong read at that offset sees all of it. Raises if the write was not applied."""
        ...


class NamespaceWriter:
    """Ingestion's :class:`Writer` over a namespace's read-after-write writer (:class:`marrow.raw.Writer`).

    A bulk update of render-ready records becomes one atomic bulk update of upserts and deletes in the
    namespace's write log; its offset is the token a strong read (the editor's preview) waits for.
    """

    def __init__(self, writer: RawWriter):
        self.writer = writer

    def bulk_update(self, upserts: Sequence[Any], deletes: Sequence[tuple[str, Any]] = ()) -> int:
        ops: list[Upsert | Delete] = [Upsert(r) for r in upserts]
        ops += [Delete(type_name, key) for type_name, key in deletes]
        return self.writer.bulk_update(ops)
