"""The read state: one version of a dataset in memory, and typed, indexed access to its records.

A :class:`ReadState` is immutable. Loading a snapshot gives one; applying a delta gives a *new* one
and leaves the old untouched, so a reader holding a state never sees a half-applied delta, and a
failed delta (wrong origin, corrupt blob) changes nothing. Indexes that were used on the old state
are carried to the new one incrementally.

    state = ReadState.from_snapshot(blob_bytes)
    titles = state["Title"]
    t = titles.get(42)                    # a view, or None
    t.title, t.year, [p.name for p in t.cast]
    titles.read(ordinals, ["title", "year"])   # bulk: {field: [values...]}
    state = state.apply_delta(delta_bytes)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from marrow.errors import BlobError, CorruptBlobError, NotFoundError, StateMismatchError
from marrow.store._accel import ACCELERATED, speedups
from marrow.store._columns import Column, _ranges
from marrow.store._encode import col_spans, column_values
from marrow.store._typedata import TypeData, TypeDelta, apply
from marrow.store._views import RecordView, c_codes, view_class
from marrow.store.blob import Blob, read_blob, write_blob
from marrow.store.index import HashIndex, PrefixIndex, PrimaryKeyIndex
from marrow.store.schema import Schema

MAX_ENTRY_KEYS = 64  # map keys whose entry positions a type keeps (TypeReader.read_entry)


class ReadState:
    """One version of a dataset: per type, its records and their indexes."""

    def __init__(
        self,
        schema: Schema,
        types: dict[str, TypeData],
        tag: str,
        version: int | None = None,
        meta: dict[str, Any] | None = None,
    ):
        self.schema = schema
        self.types = types
        self.tag = tag
        self.version = version
        self.meta = meta or {}
        self._readers: dict[str, TypeReader] = {}
        self._checksum: str | None = None

    @classmethod
    def from_snapshot(cls, blob: Any) -> ReadState:
        """Load a snapshot (bytes, mmap, memoryview, or a decoded :class:`Blob`)."""
        b = blob if isinstance(blob, Blob) else read_blob(blob)
        if b.kind != "snapshot":
            raise BlobError(f"expected a snapshot, got a {b.kind} blob; load a snapshot first, then apply it")
        state = cls(b.schema, dict(b.types), b.destination, b.version, b.meta)
        for name, (slots, used) in b.keys.items():  # shipped primary-key indexes: adopted, not built
            if name not in state.types or not state.schema[name].primary_key:
                raise CorruptBlobError(f"the snapshot ships a primary-key index for {name}, which has no key")
            reader = state[name]
            reader._pk = PrimaryKeyIndex.adopt(reader, slots, used)
        return state

    def snapshot(self) -> bytes:
        """This version as a snapshot blob, with the primary-key index of every type keyed by one
        integer field (built now if it was not yet), so that loading it needs no index build.

        The state tag and version are this state's: deltas published for it apply to what the
        snapshot loads as, in any process.
        """
        keys = {}
        for name in self.types:
            if self.schema[name].primary_key:
                index = self[name].primary_key
                if index.shippable:
                    keys[name] = (index.packed, index.used)
        return write_blob(
            Blob(
                "snapshot",
                self.schema,
                self.tag,
                None,
                self.version,
                types=self.types,
                meta=self.meta,
                keys=keys,
            )
        )

    def apply_delta(self, blob: Any) -> ReadState:
        """The state after a delta or reverse delta. Raises, changing nothing, if it does not apply."""
        b = blob if isinstance(blob, Blob) else read_blob(blob)
        if b.kind == "snapshot":
            raise BlobError("expected a delta, got a snapshot; load it with ReadState.from_snapshot")
        if b.origin != self.tag:
            raise StateMismatchError(
                f"this {b.kind} applies to state {b.origin}, but the state in memory is {self.tag}"
                f" (version {self.version}); fetch the blob for this state or load a snapshot"
            )
        types = {name: td for name, td in self.types.items() if name not in b.removed_types}
        for name, d in b.deltas.items():
            types[name] = apply(self.types.get(name), d)
        new = ReadState(b.schema, types, b.destination, b.version, b.meta)
        for name, reader in self._readers.items():
            if name in b.deltas and name in new.types:
                reader._carry_indexes(new[name], b.deltas[name])
        return new

    def __getitem__(self, name: str) -> TypeReader:
        reader = self._readers.get(name)
        if reader is None:
            data = self.types.get(name)
            if data is None:
                raise NotFoundError(f"no type {name!r} in this state; types: {list(self.types)}")
            reader = TypeReader(self, data)
        return reader

    def __contains__(self, name: str) -> bool:
        return name in self.types

    def __iter__(self) -> Iterator[str]:
        return iter(self.types)

    @property
    def nbytes(self) -> int:
        """Bytes of the encoded records (indexes are counted by :meth:`memory`)."""
        return sum(t.nbytes for t in self.types.values())

    def memory(self) -> dict[str, dict[str, int]]:
        """Per type: record count, bytes of data, bytes of the indexes built so far."""
        out = {}
        for name, td in self.types.items():
            reader = self._readers.get(name)
            out[name] = {
                "records": td.count,
                "data_bytes": td.nbytes,
                "index_bytes": reader.index_bytes if reader is not None else 0,
            }
        return out

    def checksum(self) -> str:
        """A hash of every record this version holds; equal states have equal checksums."""
        if self._checksum is None:  # a version never changes, so once is enough
            h = hashlib.blake2b(digest_size=16)
            for name in sorted(self.types):
                h.update(name.encode())
                h.update(self.types[name].checksum().encode())
            self._checksum = h.hexdigest()
        return self._checksum

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={t.count}" for n, t in self.types.items())
        return f"ReadState(version={self.version}, tag={self.tag}, {counts})"


class TypeReader:
    """The records of one type in one version."""

    def __init__(self, state: ReadState, data: TypeData):
        self.state = state
        self.data = data
        self.schema = data.schema
        self.name = data.schema.name
        self._pk: PrimaryKeyIndex | None = None
        self._hash: dict[str, HashIndex] = {}
        self._prefix: dict[tuple[str, bool], PrefixIndex] = {}
        self._decoders: dict[str, tuple[Any, Any]] = {}
        self._entries: dict[tuple[str, Any], np.ndarray] = {}  # see _entry_positions
        state._readers[self.name] = self  # before the views, so references can find this type
        self.View: type[RecordView] = view_class(self)
        self.view = self.View  # ordinal -> view, without checks (hot path)

    def __len__(self) -> int:
        return self.data.count

    def __iter__(self) -> Iterator[RecordView]:
        view = self.View
        for o in self.data.ordinals().tolist():
            yield view(o)

    def __getitem__(self, ordinal: int) -> RecordView:
        if (
            not 0 <= ordinal < self.data.capacity
            or not self.data.populated[ordinal >> 3] >> (ordinal & 7) & 1
        ):
            raise NotFoundError(f"{self.name} has no record at ordinal {ordinal}")
        return self.View(ordinal)

    def ordinals(self) -> np.ndarray:
        return self.data.ordinals()

    # --- primary key ------------------------------------------------------------------------------

    @property
    def primary_key(self) -> PrimaryKeyIndex:
        if self._pk is None:
            self._pk = PrimaryKeyIndex(self)
        return self._pk

    def get(self, key: Any) -> RecordView | None:
        """The record with this primary key, or None. A key of several fields is a tuple."""
        pk = self.primary_key
        self.get = pk.get  # type: ignore[method-assign]  # later calls go straight to the index
        return pk.get(key)

    def get_ordinal(self, key: Any) -> int:
        """The ordinal of the record with this primary key, or -1."""
        return self.primary_key.find(key)

    def get_many(self, keys: Sequence[Any]) -> np.ndarray:
        """Ordinals for many primary keys (-1 where absent), vectorised for integer keys."""
        return self.primary_key.find_many(keys)

    def lookup(self, keys: Sequence[Any]) -> list[RecordView | None]:
        """Records for many primary keys, in order; None where absent."""
        view = self.View
        return [view(o) if o >= 0 else None for o in self.get_many(keys).tolist()]

    def select(self, keys: Sequence[Any], fields: Sequence[str] | None = None) -> dict[str, list[Any]]:
        """Like :meth:`read`, by primary key: ``{field: [value per key]}``, None for every field of a
        key with no record."""
        ords = self.get_many(keys)
        present = ords >= 0
        if present.all():
            return self.read(ords, fields)
        found = self.read(ords[present], fields)
        where = np.flatnonzero(present).tolist()
        out: dict[str, list[Any]] = {}
        for name, values in found.items():
            column: list[Any] = [None] * len(ords)
            for i, v in zip(where, values, strict=True):
                column[i] = v
            out[name] = column
        return out

    # --- other indexes ----------------------------------------------------------------------------

    def hash_index(self, field: str) -> HashIndex:
        idx = self._hash.get(field)
        if idx is None:
            idx = self._hash[field] = HashIndex(self, field)
        return idx

    def find(self, field: str, value: Any) -> list[RecordView]:
        """Records whose ``field`` holds ``value`` (for list and set fields: among its elements)."""
        view = self.View
        return [view(o) for o in self.hash_index(field).find(value)]

    def prefix_index(self, field: str, words: bool = True) -> PrefixIndex:
        idx = self._prefix.get((field, words))
        if idx is None:
            idx = self._prefix[(field, words)] = PrefixIndex(self, field, words)
        return idx

    def complete(self, field: str, prefix: str, limit: int = 10, words: bool = True) -> list[RecordView]:
        """Autocomplete: records whose ``field`` (any word of it, by default) starts with ``prefix``."""
        view = self.View
        return [view(o) for o in self.prefix_index(field, words).find(prefix, limit)]

    @property
    def index_bytes(self) -> int:
        total = self._pk.nbytes if self._pk is not None else 0
        return (
            total + sum(i.nbytes for i in self._hash.values()) + sum(i.nbytes for i in self._prefix.values())
        )

    def _carry_indexes(self, new: TypeReader, delta: TypeDelta) -> None:
        if self._pk is not None and new.schema.primary_key == self.schema.primary_key:
            new._pk = self._pk.updated(new, delta)
        for field, h in self._hash.items():
            if _same_field(self, new, field):
                new._hash[field] = h.updated(new, delta)
        for key, p in self._prefix.items():
            if _same_field(self, new, key[0]):
                new._prefix[key] = p.updated(new, delta)

    # --- bulk reads -------------------------------------------------------------------------------

    def read(
        self, ordinals: Sequence[int] | np.ndarray, fields: Sequence[str] | None = None
    ) -> dict[str, list[Any]]:
        """Chosen fields of many records at once: ``{field: [value per ordinal]}``.

        References come back as ordinals of the target type (read those in bulk too); lists as
        lists, sets as frozensets, maps as dicts.
        """
        ords = np.asarray(ordinals, dtype=np.int64)
        names = list(fields) if fields is not None else self.schema.field_names
        return {name: self._column_values(name, ords) for name in names}

    def read_entry(self, field: str, key: Any, ordinals: Sequence[int] | np.ndarray) -> list[Any]:
        """For a map field, the value under ``key`` of many records (None where absent): one entry
        per record without building a dict per record — e.g. each title's artwork for one device."""
        f = self.schema.field(field)
        col = self.data.columns[field]
        if col.shape != "map" or f.type.element is None or f.type.value is None:
            raise NotFoundError(f"{self.name}.{field} is {f.type}; read_entry reads map fields")
        assert col.values is not None
        positions = self._entry_positions(field, key)[np.asarray(ordinals, dtype=np.int64)].astype(np.int64)
        _, values = self._element_decoders(field, f.type, col)
        if values is None:
            scalar = _scalar_of(col.values)
            values = lambda p: column_values(f.type.value, scalar, p)  # noqa: E731
        hit = positions >= 0
        if hit.all():
            return values(positions)
        out: list[Any] = [None] * len(positions)
        for i, v in zip(np.flatnonzero(hit).tolist(), values(positions[hit]), strict=True):
            out[i] = v
        return out

    def _entry_positions(self, field: str, key: Any) -> np.ndarray:
        """Per ordinal, the element position of map ``field``'s entry under ``key`` (-1: none). Made
        in one pass over the column the first time ``key`` is read, then kept with this version (a
        card's artwork for one device is read for every title on every page)."""
        found = self._entries.get((field, key))
        if found is not None:
            return found
        f, col = self.schema.field(field), self.data.columns[field]
        assert col.codes is not None and f.type.element is not None
        ords = self.data.ordinals()
        starts, ends = col_spans(col, ords)
        positions = _ranges(starts, ends)
        codes = col.codes.packed.gather(positions)
        distinct, first = np.unique(codes, return_index=True)
        keys = column_values(f.type.element, _scalar_of(col.codes), positions[first])
        found = np.full(self.data.capacity, -1, dtype=np.int64 if len(positions) >> 31 else np.int32)
        code = next((c for c, k in zip(distinct.tolist(), keys, strict=True) if k == key), None)
        if code is not None:
            hit = np.flatnonzero(codes == np.uint64(code))
            found[np.repeat(ords, (ends - starts).astype(np.int64))[hit]] = positions[hit]
        found.flags.writeable = False
        if len(self._entries) >= MAX_ENTRY_KEYS:  # keys come from requests: keep a bounded few
            self._entries.clear()
        self._entries[(field, key)] = found
        return found

    def rows(self, ordinals: Sequence[int] | np.ndarray, fields: Sequence[str]) -> list[tuple[Any, ...]]:
        """Like :meth:`read`, as one tuple per record."""
        cols = self.read(ordinals, fields)
        return list(zip(*(cols[f] for f in fields), strict=True))

    def array(self, field: str, ordinals: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """A numeric field as a numpy array (int64 or float; nulls as the type's null code)."""
        f = self.schema.field(field)
        col = self.data.columns[field]
        if col.shape != "scalar" or f.type.kind in ("string", "bytes"):
            raise NotFoundError(f"{self.name}.{field} is {f.type}; array() reads numeric fields")
        assert col.codes is not None
        ords = self.data.ordinals() if ordinals is None else np.asarray(ordinals, dtype=np.int64)
        raw = col.codes.packed.gather(ords)
        if f.type.kind in ("float", "double"):
            return raw.astype(np.uint32 if f.type.kind == "float" else np.uint64).view(
                np.float32 if f.type.kind == "float" else np.float64
            )
        return (raw + np.uint64(col.codes.base % (1 << 64))).view(np.int64)

    def _column_values(self, name: str, ords: np.ndarray) -> list[Any]:
        f = self.schema.field(name)
        fast = self.View.__dict__.get(name)
        if f.type.kind != "ref" and ACCELERATED and isinstance(fast, speedups.Field):
            return fast.values(ords)
        col = self.data.columns[name]
        elements, values = self._element_decoders(name, f.type, col)
        return column_values(f.type, col, ords, elements, values)

    def _element_decoders(self, name: str, ftype: Any, col: Any) -> tuple[Any, Any]:
        """C decoders of a collection's elements and map values by position (None: decode in
        numpy/Python): references stay ordinals in bulk reads, so only non-references qualify."""
        found = self._decoders.get(name)
        if found is None:
            found = (None, None)
            if ACCELERATED and col.shape in ("list", "set", "map"):
                el, val = ftype.element, ftype.value
                e = c_codes(el, col.codes) if el is not None and el.kind != "ref" else None
                v = c_codes(val, col.values) if val is not None and val.kind != "ref" and col.values else None
                found = (e.values if e is not None else None, v.values if v is not None else None)
            self._decoders[name] = found
        return found


def _same_field(old: TypeReader, new: TypeReader, field: str) -> bool:
    try:
        return old.schema.field(field).type == new.schema.field(field).type
    except KeyError:
        return False


def _scalar_of(codes: Any) -> Column:
    """A collection's element (or map value) codes as a scalar column, read by element position."""
    return Column("scalar", codes=codes)
