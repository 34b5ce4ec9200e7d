"""The last step of ingestion: one atomic bulk update of render-ready records through a writer.

The read-after-write writer (``marrow.raw``, DESIGN.md §4) satisfies :class:`Writer`; until it is
wired in, :class:`marrow.ingest.testing.StateWriter` stands in for it in tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

__all__ = ["Writer"]


class Writer(Protocol):
    """Writes render-ready records to one namespace."""

    def bulk_update(self, upserts: Sequence[Any], deletes: Sequence[tuple[str, Any]] = ()) -> int:
        """Add or replace ``upserts`` (records of :mod:`marrow.records`, by primary key) and remove
        ``deletes`` (``(type name, primary key)``), all or nothing. Returns the offset of the write:
        a strong read at that offset sees all of it. Raises if the write was not applied."""
        ...
