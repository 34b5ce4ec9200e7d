"""The write state: the records of the next version, and how it differs from the last one.

Lifecycle of one cycle::

    ws = WriteState(schema)            # or WriteState(schema, previous=state.types, tag=state.tag)
    ws.add(title)                      # any number of times; references are followed
    cycle = ws.commit()                # the new encoded state; cycle.snapshot(), .delta(), ...
    # ... the next cycle starts empty: records from earlier cycles are not carried over,
    # unless the cycle is incremental (ws.keep_previous()) and then only those not removed.

Invariants:

* identical records share one ordinal (a record is identical when every field is, references by
  the ordinal they point to);
* a record unchanged since the last version keeps its ordinal;
* an ordinal freed by a removal is reused in a later cycle, never in the cycle that freed it;
* within one version, primary keys are unique per type (a second record with the same key is an
  error that names the key).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from marrow.errors import RecordError, SchemaError
from marrow.store._columns import Column, _ranges
from marrow.store._convert import call, converter, is_frozen
from marrow.store._encode import TableIds, column_values, empty_patch, encode_patch
from marrow.store._typedata import TypeData, TypeDelta, apply, reverse
from marrow.store.cycle import Cycle, new_tag
from marrow.store.schema import ObjectSchema, Schema, type_name

Row = tuple[Any, ...]


class _TypeWrite:
    """Write-side bookkeeping of one type."""

    def __init__(self, schema: ObjectSchema, data: TypeData):
        self.schema = schema
        self.data = data  # the last committed version
        self.prev: dict[Row, int] = {}  # records of the last version → ordinal
        self.cur: dict[Row, int] = {}  # records of this cycle → ordinal
        self.keys: dict[Any, Row] = {}  # primary key → record, this cycle
        self.prev_keys: dict[Any, Row] = {}  # primary key → record, the last version
        self.new: dict[int, Row] = {}  # ordinal → record, for ordinals first used this cycle
        self.free: list[int] = []  # ordinals free at the start of this cycle, ascending
        self.next_free = 0
        self.capacity = data.capacity
        self.tables: dict[str, dict[str, TableIds]] = {}
        self.key_index = [schema.field_names.index(k) for k in schema.primary_key]
        self.converters: list[Any] | None = None
        self.getter = operator.attrgetter(*schema.field_names)

    def start_cycle(self) -> None:
        self.cur = {}
        self.keys = {}
        self.new = {}
        # Every ordinal of the last state is in use this cycle, even one whose record a schema
        # change made identical to another (it is removed now, so it is not free until next cycle).
        used = np.zeros(self.capacity, dtype=bool)
        used[self.data.ordinals()] = True
        self.free = np.flatnonzero(~used).tolist()
        self.next_free = 0

    def ordinal_for(self, row: Row) -> int:
        found = self.cur.get(row)
        if found is not None:
            return found
        if self.key_index:
            key = tuple(row[i] for i in self.key_index)
            if key in self.keys:
                named = dict(zip(self.schema.primary_key, key, strict=True))
                raise RecordError(
                    f"two different {self.schema.name} records have the primary key {named}; "
                    f"a key names one record per version"
                )
        ordinal = self.prev.get(row)
        if ordinal is None:
            if self.next_free < len(self.free):
                ordinal = self.free[self.next_free]
                self.next_free += 1
            else:
                ordinal = self.capacity
                self.capacity += 1
            self.new[ordinal] = row
        self.cur[row] = ordinal
        if self.key_index:
            self.keys[key] = row
        return ordinal

    def remove_key(self, key: tuple[Any, ...]) -> bool:
        row = self.keys.pop(key, None)
        if row is None:
            return False
        self.new.pop(self.cur.pop(row), None)
        return True

    def delta(self) -> TypeDelta:
        # Ordinals in numpy, rows only for the ordinals first used this cycle (a small delta's cost
        # is its records, not the type's: an incremental cycle keeps every other ordinal).
        cur = np.fromiter(self.cur.values(), dtype=np.int64, count=len(self.cur))
        prev = self.data.ordinals()  # all of them (ascending), not only the distinct rows
        live = np.zeros(max(int(prev[-1]) + 1 if len(prev) else 0, self.capacity), dtype=bool)
        live[cur] = True
        removed = prev[~live[prev]]
        added_list = sorted(self.new)
        added = np.array(added_list, dtype=np.int64)
        # Trim trailing ordinals that hold nothing, so capacity tracks the highest live ordinal.
        capacity = int(cur.max()) + 1 if len(cur) else 0
        rows = [self.new[o] for o in added_list]
        patches: dict[str, Column] = {}
        for i, f in enumerate(self.schema.fields):
            old = self.data.columns.get(f.name) if _has_field(self.data.schema, f) else None
            tables = self.tables.setdefault(f.name, {})
            if old is None:
                tables.clear()
            patches[f.name] = encode_patch(
                f.type, [r[i] for r in rows], old, tables, f"{self.schema.name}.{f.name}"
            )
        return TypeDelta(self.schema, capacity, removed, added, patches)

    def commit(self, delta: TypeDelta, data: TypeData) -> None:
        self.data = data
        self.prev = self.cur
        self.prev_keys = self.keys  # kept, so an incremental cycle copies it instead of rebuilding it
        self.capacity = data.capacity
        self.cur = {}


def _has_field(schema: ObjectSchema, f: Any) -> bool:
    return f.name in schema.field_names and schema.field(f.name).type == f.type


class WriteState:
    """Collects the records of the next version; :meth:`commit` encodes it."""

    def __init__(
        self,
        schema: Schema,
        previous: Mapping[str, TypeData] | None = None,
        tag: str | None = None,
        version: int | None = None,
    ):
        """``previous``, ``tag`` and ``version`` describe the last committed state when resuming
        from one (a restarted producer); the first cycle is then a delta from it."""
        self.schema = schema
        self._class_types: dict[type, str] = {}
        self._types: dict[str, _TypeWrite] = {}
        previous = previous or {}
        if previous:
            old_schema = Schema(d.schema for d in previous.values())
            old_schema.check_compatible(schema)
        for name, t in schema.items():
            data = previous.get(name) or TypeData.empty(t)
            tw = _TypeWrite(t, data)
            if name in previous:
                tw.prev = _rows_of(data, t)
                ki = tw.key_index
                tw.prev_keys = {tuple(row[i] for i in ki): row for row in tw.prev} if ki else {}
            self._types[name] = tw
        self._previous = dict(previous)
        self._previous_schema = Schema(d.schema for d in previous.values()) if previous else None
        self.tag: str | None = tag if previous else None
        self._previous_version: int | None = version if previous else None
        self._previous_meta: dict[str, Any] = {}
        self._start_cycle()

    def _start_cycle(self) -> None:
        self._seen: dict[int, tuple[Any, int]] = {}
        self._deleted: set[str] = set()  # types with records deleted by key this cycle
        for tw in self._types.values():
            tw.start_cycle()

    # --- populating -------------------------------------------------------------------------------

    def add(self, record: Any, type: str | None = None) -> int:
        """Add a record (an object with the type's fields as attributes, or a mapping with ``type``).

        Referenced records are added first. Returns the record's ordinal.
        """
        seen = self._seen.get(id(record))
        if seen is not None and seen[0] is record:
            return seen[1]
        name = type or self._type_of(record)
        tw = self._types.get(name)
        if tw is None:
            raise SchemaError(f"no type {name!r} in the schema; types: {list(self._types)}")
        if tw.converters is None:
            tw.converters = [
                converter(tw.schema, f.name, f.type, self.add, self._type_of) for f in tw.schema.fields
            ]
        if isinstance(record, Mapping):
            values = tuple(record.get(f) for f in tw.schema.field_names)
        else:
            try:
                values = tw.getter(record)
            except AttributeError:
                values = tuple(getattr(record, f, None) for f in tw.schema.field_names)
            if len(tw.converters) == 1:
                values = (values,)
        ordinal = tw.ordinal_for(tuple(map(call, tw.converters, values)))
        if is_frozen(record.__class__):
            # An immutable object added again this cycle is the same record: skip the work.
            self._seen[id(record)] = (record, ordinal)
        return ordinal

    def add_all(self, records: Iterable[Any], type: str | None = None) -> None:
        for r in records:
            self.add(r, type)

    def keep_previous(self) -> None:
        """Start from the last version's records (an incremental cycle); then add, modify or delete."""
        for tw in self._types.values():
            tw.cur = dict(tw.prev)
            if tw.key_index:
                tw.keys = dict(tw.prev_keys)

    def delete(self, type: str, key: Any) -> bool:
        """Remove the record with this primary key from the cycle; False when there is none."""
        tw = self._types[type]
        self._seen.clear()  # a deleted record may be added again: it needs a fresh ordinal lookup
        self._deleted.add(type)
        if not tw.key_index:
            raise SchemaError(f"type {type} has no primary key; records without one cannot be deleted by key")
        return tw.remove_key(key if isinstance(key, tuple) else (key,))

    def type_of(self, record: Any) -> str:
        """The type name a record is written as (its class name, or ``__type_name__``)."""
        return self._type_of(record)

    def key_of(self, record: Any, type: str) -> tuple[Any, ...]:
        """The primary key of a record of ``type``, as a tuple of its key fields' values."""
        tw = self._types[type]
        if not tw.key_index:
            raise SchemaError(f"type {type} has no primary key")
        get = record.get if isinstance(record, Mapping) else lambda k: getattr(record, k, None)
        return tuple(get(k) for k in tw.schema.primary_key)

    def _type_of(self, record: Any) -> str:
        cls = record.__class__
        name = self._class_types.get(cls)
        if name is None:
            name = self._class_types[cls] = type_name(cls)
        return name

    # --- committing -------------------------------------------------------------------------------

    def commit(self, version: int | None = None, meta: dict[str, Any] | None = None) -> Cycle:
        """Encode this cycle's records as the next state and start a new, empty cycle.

        The same as :meth:`prepare` then :meth:`accept`. Types the schema no longer has are removed
        by the delta and restored by the reverse delta.
        """
        cycle = self.prepare(version, meta)
        self.accept(cycle)
        return cycle

    def prepare(self, version: int | None = None, meta: dict[str, Any] | None = None) -> Cycle:
        """Encode this cycle's records as the next state without moving on to it.

        Follow with :meth:`accept` to make it the last committed state, or :meth:`rollback` to
        forget the cycle (a producer validates in between). Nothing here changes what was
        committed before.
        """
        forward = {name: tw.delta() for name, tw in self._types.items()}
        state: dict[str, TypeData] = {}
        backward: dict[str, TypeDelta] = {}
        for name, d in forward.items():
            old = self._types[name].data
            # A type is new only when the last state lacked it; an emptied type keeps its encodings.
            is_new = name not in self._previous
            state[name] = apply(None if is_new else old, d)
            backward[name] = _undo_new(d) if is_new else reverse(old, d)
        removed_types = [name for name in self._previous if name not in self.schema]
        for name in removed_types:
            backward[name] = _restore_all(self._previous[name])
        if self._deleted:  # only deleting by key can leave a kept record pointing at nothing
            _check_references(state, self._deleted)
        return Cycle(
            schema=self.schema,
            previous_schema=self._previous_schema,
            origin=self.tag,
            destination=new_tag(),
            version=version,
            previous_version=self._previous_version,
            previous_meta=self._previous_meta,
            state=state,
            forward=forward,
            backward=backward,
            removed_types=removed_types,
            meta=dict(meta or {}),
        )

    def accept(self, cycle: Cycle) -> None:
        """Make a prepared cycle the last committed state and start a new, empty cycle."""
        if cycle.origin != self.tag:
            raise ValueError("this cycle was not prepared from the state last committed here")
        for name, tw in self._types.items():
            tw.commit(cycle.forward[name], cycle.state[name])
        self.tag = cycle.destination
        self._previous_version, self._previous_meta = cycle.version, cycle.meta
        self._previous = dict(cycle.state)
        self._previous_schema = self.schema
        self._start_cycle()

    def rollback(self) -> None:
        """Forget this cycle's records (prepared or not); the next cycle starts from the last commit."""
        for tw in self._types.values():
            tw.tables.clear()  # ids handed out this cycle are void
        self._start_cycle()

    @property
    def previous(self) -> dict[str, TypeData]:
        return dict(self._previous)


def _undo_new(d: TypeDelta) -> TypeDelta:
    """Reverse of a delta that created a type: remove everything."""
    patches = {f.name: empty_patch(f.type) for f in d.schema.fields}
    return TypeDelta(d.schema, 0, d.added, np.zeros(0, np.int64), patches)


def _restore_all(old: TypeData) -> TypeDelta:
    ords = old.ordinals()
    return TypeDelta(
        old.schema,
        old.capacity,
        np.zeros(0, np.int64),
        ords,
        {n: c.take(ords, whole_tables=True) for n, c in old.columns.items()},  # rebuilt from nothing
    )


def _rows_of(data: TypeData, schema: ObjectSchema) -> dict[Row, int]:
    """Decode a version's records into write-side rows (used when a producer restores)."""
    ords = data.ordinals()
    columns = []
    for f in schema.fields:
        col = data.columns.get(f.name)
        if (
            col is None
            or data.schema.field_names.count(f.name) == 0
            or data.schema.field(f.name).type != f.type
        ):
            columns.append([None] * len(ords))
        else:
            columns.append([_row_value(v) for v in column_values(f.type, col, ords)])
    rows = {}
    for i, o in enumerate(ords.tolist()):
        rows[tuple(c[i] for c in columns)] = o
    return rows


def _row_value(v: Any) -> Any:
    """A read value in write-side row form: collections as (sorted, for sets and maps) tuples."""
    if isinstance(v, list):
        return tuple(v)
    if isinstance(v, frozenset):
        return tuple(sorted(v))
    if isinstance(v, dict):
        return tuple(sorted(v.items()))
    return v


def _check_references(state: dict[str, TypeData], targets: set[str]) -> None:
    """Refuse a state in which a record refers to a record of ``targets`` that is gone."""
    for name, data in state.items():
        for f in data.schema.fields:
            target = (
                f.type.target
                if f.type.kind == "ref"
                else f.type.element.target
                if (f.type.is_collection and f.type.element is not None and f.type.element.kind == "ref")
                else None
            )
            if target not in targets or not data.count:
                continue
            col = data.columns[f.name]
            assert col.codes is not None
            owners = data.ordinals()
            if col.shape == "scalar":
                index = owners
            else:
                starts, ends, _ = col.spans()
                index = _ranges(starts[owners], ends[owners])
                owners = np.repeat(owners, (ends[owners] - starts[owners]).astype(np.int64))
            refs = col.codes.packed.gather(index)
            present = refs != np.uint64(col.codes.packed.null)
            refs, owners = refs[present].astype(np.int64), owners[present]
            live = state[target].mask()
            if len(live):
                dangling = (refs >= len(live)) | ~live[np.minimum(refs, len(live) - 1)]
            else:
                dangling = np.ones(len(refs), dtype=bool)
            if dangling.any():
                i = int(np.flatnonzero(dangling)[0])
                raise RecordError(
                    f"{name} record at ordinal {int(owners[i])} refers through {f.name} to a {target} "
                    f"that this cycle deletes; delete or change the {name} record too, or keep the {target}"
                )
