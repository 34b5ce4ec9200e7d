"""The in-flight overlay: acknowledged bulk updates newer than the base version a process holds.

An :class:`Overlay` belongs to one base version (a :class:`~marrow.store.ReadState`, or None before
the first) whose *folded offset* is its ``floor``: every entry at or below the floor is in the base.
Entries above it are applied in offset order; each record they write (and each keyed record those
refer to, which folding adds to the version too) is kept per (type, primary key)
as a list of ``(offset, record or None for a delete)``, so that a reader at any offset between the
floor and the last applied one sees exactly the entries up to it — a bulk update whole or not at all.

Lifecycle: ``apply`` entries as the log is tailed (one thread at a time); ``offset`` moves to an
entry's offset only after all its records are in place, so a reader that takes ``offset`` first never
sees half of it. When a version that contains some entries is loaded, :meth:`rebased` makes a new
overlay over it holding only the entries above its folded offset; readers of the old one keep it,
whole, for as long as they hold it.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from marrow.raw.ops import BulkUpdate, Validator
from marrow.raw.record import OverlayRecord, RecordClasses
from marrow.store import ReadState, Schema

__all__ = ["FOLDED_OFFSET", "Overlay", "folded_offset"]

FOLDED_OFFSET = "raw_offset"  #: the key of a version's meta that holds the offset folded into it

_UNSETTLED = 1 << 62
Version = tuple[int, OverlayRecord | None]  #: (offset, record; None when the entry deleted it)


def folded_offset(state: ReadState | None) -> int:
    """The offset of the last write log entry folded into ``state`` (0 for none)."""
    if state is None:
        return 0
    return int(state.meta.get(FOLDED_OFFSET, 0))


def normal_key(key: Any) -> Any:
    """A primary key as the overlay keys it: a value, or a tuple for a key of several fields."""
    return tuple(key) if isinstance(key, list) else key


class TypeOverlay:
    """The in-flight records of one type."""

    def __init__(self, name: str, base: ReadState | None):
        self.name = name
        self.base = base[name] if base is not None and name in base else None
        self.versions: dict[Any, list[Version]] = {}
        self.shadowed: dict[Any, tuple[int, int]] = {}  # key -> (base ordinal, first offset) if in base
        self.count_change = 0  # records present minus records of the base, after every write so far
        #: (offset of the last whole entry that wrote this type, count_change after it); until the
        #: first entry is whole, no offset is at or above it, so readers scan
        self.settled: tuple[int, int] = (_UNSETTLED, 0)
        self._shadow_cache: tuple[int, np.ndarray] | None = None

    def write(self, offset: int, key: Any, record: OverlayRecord | None) -> None:
        """Record the entry at ``offset`` writing ``key``; :meth:`settle` once the entry is whole."""
        versions = self.versions.get(key)
        if versions is None:
            ordinal = self.base.get_ordinal(key) if self.base is not None else -1
            before = ordinal >= 0
            if before:
                self.shadowed[key] = (ordinal, offset)
            self.versions[key] = [(offset, record)]
        else:
            before = versions[-1][1] is not None
            versions.append((offset, record))
        self.count_change += (record is not None) - before

    def settle(self, offset: int) -> None:
        """The entry at ``offset`` is whole: readers at or above it may use the running figures."""
        self.settled = (offset, self.count_change)

    def at(self, key: Any, offset: int) -> Version | None:
        """The newest version of ``key`` at or below ``offset``, or None when the overlay has none."""
        versions = self.versions.get(key)
        if not versions:
            return None
        last = versions[-1]
        if last[0] <= offset:
            return last
        i = bisect.bisect_right(versions, offset, key=lambda v: v[0])
        return versions[i - 1] if i else None

    def shadowed_ordinals(self, offset: int) -> np.ndarray:
        """Base ordinals of records the overlay replaces or deletes, as seen at ``offset``."""
        settled = self.settled[0]
        cache = self._shadow_cache
        if offset >= settled and cache is not None and cache[0] == settled:
            return cache[1]
        upto = min(offset, settled)  # later entries that wrote this type are not whole yet
        ords = np.sort(np.array([o for o, first in list(self.shadowed.values()) if first <= upto], np.int64))
        if offset >= settled:
            self._shadow_cache = (settled, ords)
        return ords

    def count(self, offset: int) -> int | None:
        """Records present at ``offset`` minus records of the base, when known without a scan."""
        settled, change = self.settled
        return change if offset >= settled else None

    def records(self, offset: int) -> list[tuple[Any, OverlayRecord | None, bool]]:
        """(key, record or None, whether the base has the key) for every key written at or below
        ``offset``."""
        out = []
        for key, versions in list(self.versions.items()):
            found = self.at(key, offset) if versions[-1][0] > offset else versions[-1]
            if found is not None:
                out.append((key, found[1], key in self.shadowed))
        return out


class Overlay:
    """The entries above one base version's folded offset; see the module docstring."""

    def __init__(self, schema: Schema, base: ReadState | None, classes: RecordClasses | None = None):
        self.schema = schema
        self.base = base
        self.floor = folded_offset(base)
        self.offset = self.floor  # the last offset applied
        self.classes = classes or RecordClasses(schema)
        self.validator = Validator(schema)
        self.types: dict[str, TypeOverlay] = {}
        self.entries: list[tuple[int, BulkUpdate]] = []

    def type(self, name: str) -> TypeOverlay:
        found = self.types.get(name)
        if found is None:
            found = self.types[name] = TypeOverlay(name, self.base)
        return found

    def apply(self, offset: int, update: BulkUpdate) -> None:
        """Apply the entry at ``offset``; entries at or below the current offset are ignored."""
        if offset <= self.offset:
            return
        record = self.classes.record
        touched = set()
        for change in update.changes:
            rec = None if change.values is None else record(change.type, change.values)
            t = self.type(change.type)
            t.write(offset, normal_key(change.key), rec)
            touched.add(t)
            # keyed records it refers to are written with it (as folding adds them to the version)
            for type, key, row in self.validator.keyed_records(change):
                if row is not change.values:
                    nested = self.type(type)
                    nested.write(offset, normal_key(key), record(type, row))
                    touched.add(nested)
        for t in touched:
            t.settle(offset)
        if update.changes:
            self.entries.append((offset, update))
        self.offset = offset  # last: readers that take the offset see the entry whole

    def rebased(self, base: ReadState) -> Overlay:
        """An overlay over ``base`` holding this one's entries above ``base``'s folded offset."""
        fresh = Overlay(self.schema if base is None else base.schema, base, self.classes)
        if fresh.schema is not self.schema and fresh.schema.fingerprint != self.schema.fingerprint:
            fresh.classes = RecordClasses(fresh.schema)
        start = bisect.bisect_right(self.entries, fresh.floor, key=lambda e: e[0])
        for offset, update in self.entries[start:]:  # those folded into the base are dropped
            fresh.apply(offset, update)
        fresh.offset = max(fresh.offset, self.offset, fresh.floor)
        return fresh

    def __len__(self) -> int:
        """Entries held (the in-flight bulk updates)."""
        return len(self.entries)
