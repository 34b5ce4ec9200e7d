"""One type's records in one version (:class:`TypeData`), and the change between two versions.

A :class:`TypeDelta` lists the ordinals removed and added and, per field, a patch column with the
rows of the added ordinals. :func:`apply` is the only way a new version is built — the producer uses
it to make its next state and consumers use it to follow deltas — so a snapshot of the producer's
state and a consumer's state after the delta hold the very same arrays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from marrow.store._columns import Column, splice
from marrow.store._packed import Packed, pack_rows
from marrow.store._strings import fingerprint
from marrow.store.schema import ObjectSchema


@dataclass(frozen=True, eq=False)
class TypeData:
    """The encoded records of one type in one version. Immutable."""

    schema: ObjectSchema
    capacity: int  # ordinals 0..capacity-1 exist; populated says which hold a record
    populated: np.ndarray  # bit per ordinal, np.packbits(bitorder="little")
    columns: dict[str, Column]
    count: int = field(default=-1)

    def __post_init__(self) -> None:
        if self.count < 0:
            object.__setattr__(self, "count", int(np.unpackbits(self.populated).sum()))

    @classmethod
    def empty(cls, schema: ObjectSchema) -> TypeData:
        return cls(schema, 0, np.zeros(0, np.uint8), {}, 0)

    def mask(self) -> np.ndarray:
        """A bool per ordinal: does it hold a record?"""
        return np.unpackbits(self.populated, count=self.capacity, bitorder="little").astype(bool)

    def ordinals(self) -> np.ndarray:
        return np.flatnonzero(self.mask())

    @property
    def nbytes(self) -> int:
        return int(self.populated.nbytes) + sum(c.nbytes for c in self.columns.values())

    def checksum(self) -> str:
        """A hash of everything this version holds; equal states have equal checksums."""
        h = hashlib.sha256()  # SHA-NI where the CPU has it: 1.6× blake2b here, as strong
        seen: set[tuple[int, int]] = set()

        def array(a: np.ndarray) -> None:  # rows shared by several fields are hashed once
            where = (a.__array_interface__["data"][0], a.nbytes)  # an empty slice shares its base's address
            if where not in seen:
                seen.add(where)
                h.update(memoryview(np.ascontiguousarray(a)).cast("B"))

        h.update(str(self.schema).encode())
        h.update(self.capacity.to_bytes(8, "little"))
        h.update(self.populated.tobytes())
        for name in sorted(self.columns):
            col = self.columns[name]
            h.update(name.encode())
            for codes in (col.codes, col.values):
                if codes is not None:
                    p = codes.packed
                    h.update(f"{p.bits}:{p.stride}:{p.offset}:{codes.base}".encode())
                    array(p.array)
                    if codes.table is not None:
                        h.update(memoryview(np.ascontiguousarray(codes.table.ends.array)).cast("B"))
                        h.update(memoryview(codes.table.data))
                        if codes.table.symbols is not None:
                            h.update(fingerprint(codes.table.symbols))
            if col.ends is not None:
                e = col.ends
                h.update(f"{e.bits}:{e.stride}:{e.offset}".encode())
                array(e.array)
            if col.data is not None:
                h.update(memoryview(col.data))
            if col.symbols is not None:
                h.update(fingerprint(col.symbols))
        return h.hexdigest()


@dataclass(frozen=True, eq=False)
class TypeDelta:
    """From one version of a type to the next: removed ordinals, added ordinals and their rows."""

    schema: ObjectSchema  # the destination schema of the type
    capacity: int  # the destination capacity
    removed: np.ndarray  # int64, sorted
    added: np.ndarray  # int64, sorted
    patches: dict[str, Column]  # per destination field: the rows of ``added``, in order
    full: frozenset[str] = frozenset()  # fields whose patch is instead the complete column

    @property
    def is_empty(self) -> bool:
        return not len(self.removed) and not len(self.added)


def apply(old: TypeData | None, delta: TypeDelta, whole: bool = False) -> TypeData:
    """The version after ``delta``. ``old`` is not modified.

    A delta that keeps the layout is applied to a copy of the old rows, in proportion to what it
    changes (:func:`marrow.store._patch.patch`); otherwise, or with ``whole``, every column is spliced
    and the rows are laid out anew. Both give the very same arrays.
    """
    if old is not None and not whole:
        from marrow.store._patch import patch  # it builds on this module's types

        done = patch(old, delta)
        if done is not None:
            return done
    old_capacity = old.capacity if old is not None else 0
    cap = delta.capacity
    mask = np.zeros(cap, dtype=bool)
    if old is not None:
        keep = min(old_capacity, cap)
        mask[:keep] = old.mask()[:keep]
    removed = delta.removed
    mask[removed[removed < cap]] = False
    mask[delta.added] = True
    cleared = removed
    if cap < old_capacity:  # ordinals past the new capacity go too (they hold no record by now)
        cleared = np.union1d(removed, np.arange(cap, old_capacity, dtype=np.int64))
    columns = {}
    for f in delta.schema.fields:
        if f.name in delta.full:  # a field the state in memory lacks, restored whole
            columns[f.name] = delta.patches[f.name]
            continue
        prev = (
            old.columns.get(f.name)
            if old is not None and _same_type(old.schema, delta.schema, f.name)
            else None
        )
        columns[f.name] = splice(prev, delta.patches[f.name], cap, cleared, delta.added)
    populated = np.packbits(mask, bitorder="little")
    return TypeData(delta.schema, cap, populated, rows(columns, cap), int(mask.sum()))


def rows(columns: dict[str, Column], capacity: int) -> dict[str, Column]:
    """The same columns with every per-ordinal code array moved into one array of rows.

    A row holds one record's fixed-width parts — scalar codes, and the end offsets of strings and
    collections — end to end (``stride`` = their total bits), as Hollow lays out its fixed-length
    data: a point read of several fields then touches one or two cache lines instead of one per
    field. Nothing is padded, so the rows cost what the separate arrays did.
    """
    parts: list[tuple[str, str, Packed]] = []
    for name, col in columns.items():
        p = col.codes.packed if col.shape == "scalar" else col.ends  # type: ignore[union-attr]
        if p is not None and p.n == capacity:
            parts.append((name, "codes" if col.shape == "scalar" else "ends", p))
    if capacity == 0 or len(parts) < 2:
        return columns
    stride = sum(p.bits for _, _, p in parts)
    words = np.zeros(Packed.words_for(capacity, stride, stride, 0), dtype=np.uint64)
    offset = 0
    placed: dict[str, Packed] = {}
    for name, _, p in parts:
        pack_rows(words, p.decode(), p.bits, stride, offset)
        placed[name] = Packed(words, p.bits, capacity, stride, offset)
        offset += p.bits
    out = dict(columns)
    for name, part, _ in parts:
        col = columns[name]
        if part == "codes":
            assert col.codes is not None
            out[name] = replace(col, codes=replace(col.codes, packed=placed[name]))
        else:
            out[name] = replace(col, ends=placed[name])
    return out


def _same_type(old: ObjectSchema, new: ObjectSchema, name: str) -> bool:
    try:
        return old.field(name).type == new.field(name).type
    except KeyError:
        return False


def reverse(old: TypeData | None, delta: TypeDelta, schema: ObjectSchema | None = None) -> TypeDelta:
    """The delta that takes the state after ``delta`` back to ``old``.

    Removed rows come back with their old encoding, read from ``old``; added ones go; tables are cut
    back to their old length. A field that ``delta`` drops (a schema change) comes back whole.
    """
    if old is None:
        assert schema is not None
        old = TypeData.empty(schema)
    restore = delta.removed
    patches = {}
    full = set()
    for f in old.schema.fields:
        col = old.columns.get(f.name)
        if col is None:
            raise ValueError(f"type data for {old.schema.name} lacks column {f.name}")
        if _same_type(old.schema, delta.schema, f.name):
            patches[f.name] = col.take(restore)
        else:  # the state after ``delta`` has no such column to patch
            patches[f.name] = col
            full.add(f.name)
    return TypeDelta(old.schema, old.capacity, delta.added, restore, patches, frozenset(full))
