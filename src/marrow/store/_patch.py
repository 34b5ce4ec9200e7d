"""Applying a delta in proportion to what it changes: the old version's rows are copied (a memcpy)
and only the changed rows are rewritten, instead of every column being decoded and laid out anew.

:func:`patch` gives the very arrays :func:`marrow.store._typedata.apply` would build the long way
(the tests compare both), or None when the delta changes the layout — a type's fields or their
encoding (an integer range or a string table that widens a code, a byte pool whose end offsets
need another width), a shrinking capacity, a field restored whole — and the long way must be taken.

What still costs in proportion to the type: the copy of the rows and of each byte pool (memcpy,
without the GIL), and the end offsets of variable-length fields after the first changed row, which
move by the bytes the changed rows gained or lost (one pass in C over the rows past that point).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marrow.store._columns import (
    Codes,
    Column,
    _gather_two,
    _splice_elements,
    _splice_table,
)
from marrow.store._packed import Packed, bits_for, choose_layout, put, shift
from marrow.store._typedata import TypeData, TypeDelta
from marrow.store.schema import ObjectSchema


def patch(old: TypeData, delta: TypeDelta) -> TypeData | None:
    """The version after ``delta`` built from ``old``'s rows, or None when the long way is needed."""
    cap = delta.capacity
    if delta.full or cap < old.capacity or not _same_fields(old.schema, delta.schema):
        return None
    layout = _rows(old)
    if layout is None:
        return None
    words, stride, parts = layout
    removed = delta.removed[delta.removed < cap]
    added = delta.added
    # ordinals whose row changes: removed, added, and those a growing capacity brings (null unless added)
    cleared = np.setdiff1d(np.union1d(removed, np.arange(old.capacity, cap, dtype=np.int64)), added)
    changed = np.union1d(cleared, added)
    columns: dict[str, Column] = {}
    writes: list[tuple[Packed, np.ndarray, np.ndarray, Any]] = []  # (part, codes, at, runs to shift)
    for f in delta.schema.fields:
        col, p, piece = old.columns[f.name], parts[f.name], delta.patches[f.name]
        if piece.shape != col.shape:
            return None
        if piece.shape == "scalar":
            made = _scalar(col, piece, p, cleared, added)
        else:
            made = _spans(old, col, piece, p, cap, changed, added)
        if made is None:
            return None
        column, write = made
        columns[f.name] = column
        if write is not None:
            writes.append(write)
    if writes:
        grown = np.zeros(Packed.words_for(cap, stride, stride, 0), dtype=np.uint64)
        keep = min(len(words), len(grown))
        grown[:keep] = words[:keep]
        words = grown
    out: dict[str, Column] = {}
    for f in delta.schema.fields:
        p = parts[f.name]
        placed = Packed(words, p.bits, cap, stride, p.offset)
        col = columns[f.name]
        if col.shape == "scalar":
            assert col.codes is not None
            out[f.name] = Column("scalar", codes=Codes(placed, col.codes.base, col.codes.table))
        else:
            out[f.name] = Column(col.shape, col.codes, placed, col.data, col.values, col.symbols)
    for p, codes, at, runs in writes:
        if runs is not None:
            shift(words, p.bits, stride, p.offset, *runs)
        put(words, codes, p.bits, stride, p.offset, at)
    populated, count = _populated(old, cap, removed, added)
    return TypeData(delta.schema, cap, populated, out, count)


def _same_fields(old: ObjectSchema, new: ObjectSchema) -> bool:
    if len(old.fields) != len(new.fields):
        return False
    return all(a.name == b.name and a.type == b.type for a, b in zip(old.fields, new.fields, strict=True))


def _rows(old: TypeData) -> tuple[np.ndarray, int, dict[str, Packed]] | None:
    """(rows, stride, each field's part of them) when every field of ``old`` lies in one array of
    rows in schema order — the layout :func:`~marrow.store._typedata.rows` makes — else None."""
    parts: dict[str, Packed] = {}
    words: np.ndarray | None = None
    offset = 0
    stride = -1
    for f in old.schema.fields:
        col = old.columns.get(f.name)
        if col is None:
            return None
        p = col.codes.packed if col.shape == "scalar" and col.codes is not None else col.ends
        if p is None or p.n != old.capacity or p.offset != offset or not p.strided:
            return None
        array = p.array
        if words is None:
            words, stride = array, p.stride
        elif p.stride != stride or array.ctypes.data != words.ctypes.data:
            return None
        parts[f.name] = p
        offset += p.bits
    if words is None or offset != stride or words.dtype != np.uint64:
        return None
    return words, stride, parts


def _scalar(
    col: Column, piece: Column, p: Packed, cleared: np.ndarray, added: np.ndarray
) -> tuple[Column, Any] | None:
    old, new = col.codes, piece.codes
    assert old is not None and new is not None
    if new.packed.bits != p.bits or new.base != old.base:
        return None  # re-coded: the long way
    table = _splice_table(old, new)
    column = Column("scalar", codes=Codes(p, new.base, table))
    if not len(cleared) and not len(added):
        return column, None
    at = np.concatenate([cleared, added]).astype(np.int64)
    codes = np.concatenate([np.full(len(cleared), p.null, np.uint64), new.packed.decode()])
    return column, (p, codes, at, None)


def _spans(
    old: TypeData,
    col: Column,
    piece: Column,
    p: Packed,
    cap: int,
    changed: np.ndarray,
    added: np.ndarray,
) -> tuple[Column, Any] | None:
    """A var or collection column: its payload spliced around the changed rows; the changed rows'
    end offsets, and the runs of rows between them whose end offsets move (and by how much)."""
    end_bits = p.bits - 1
    low = np.uint64((1 << end_bits) - 1)
    old_n = old.capacity
    # old end offsets: of each changed row, and of the row before it (the changed row's start)
    inside = changed[changed < old_n]
    raw = p.gather(inside)
    old_total = int(p.get(old_n - 1)) & int(low) if old_n else 0
    o_end = np.full(len(changed), old_total, np.uint64)
    o_end[: len(inside)] = raw & low
    before = changed - 1
    o_start = np.zeros(len(changed), np.uint64)
    has = (before >= 0) & (before < old_n)
    o_start[has] = p.gather(before[has]) & low
    o_start[before >= old_n] = old_total
    p_starts, p_ends, p_nulls = piece.spans()
    is_added = np.isin(changed, added, assume_unique=True)
    n_len = np.zeros(len(changed), np.int64)
    n_len[is_added] = (p_ends - p_starts).astype(np.int64)
    nulls = np.ones(len(changed), bool)
    nulls[is_added] = p_nulls
    grow = np.cumsum(n_len - (o_end - o_start).astype(np.int64))  # bytes gained up to each changed row
    total = old_total + (int(grow[-1]) if len(grow) else 0)
    if choose_layout(bits_for(total) + 1) != p.bits:
        return None  # the end offsets need another width: the long way
    # the payload: old runs between changed rows, and the patch's rows for added ones
    a = np.empty(2 * len(changed) + 1, np.int64)
    b = np.empty_like(a)
    from_patch = np.zeros(len(a), bool)
    a[0::2] = np.r_[0, o_end.astype(np.int64)]
    b[0::2] = np.r_[o_start.astype(np.int64), old_total]
    a[1::2] = b[1::2] = 0
    a[1::2][is_added] = p_starts.astype(np.int64)
    b[1::2][is_added] = p_ends.astype(np.int64)
    from_patch[1::2] = True
    plan = (a, b, from_patch)
    if piece.shape == "var":
        assert piece.data is not None
        old_data = col.data if col.data is not None else np.zeros(0, np.uint8)
        column = Column("var", data=_gather_two(old_data, piece.data, plan), symbols=piece.symbols)
    else:
        assert piece.codes is not None
        codes = _splice_elements(col.codes, piece.codes, plan)
        values = _splice_elements(col.values, piece.values, plan) if piece.values is not None else None
        column = Column(piece.shape, codes=codes, values=values)
    if not len(changed):
        return column, None
    # end offsets: the rows between changed ones move by what the changed rows before them gained;
    # a changed row's old end, moved likewise, is its new end
    last = np.r_[changed[1:], cap]
    moving = (grow != 0) & (last > changed + 1)
    runs = (changed[moving] + 1, last[moving], grow[moving])
    ends = (o_end.astype(np.int64) + grow).astype(np.uint64) | (
        nulls.astype(np.uint64) << np.uint64(end_bits)
    )
    return column, (p, ends, changed, runs)


def _populated(old: TypeData, cap: int, removed: np.ndarray, added: np.ndarray) -> tuple[np.ndarray, int]:
    populated = np.zeros((cap + 7) // 8, np.uint8)
    populated[: len(old.populated)] = old.populated[: len(populated)]
    count = old.count
    for at, value in ((removed, 0), (added, 1)):
        if not len(at):
            continue
        at = np.unique(at)
        byte, bit = at >> 3, (at & 7).astype(np.uint8)
        was = (populated[byte] >> bit) & 1
        if value:
            np.bitwise_or.at(populated, byte, np.uint8(1) << bit)
            count += int(len(at) - was.sum())
        else:
            np.bitwise_and.at(populated, byte, ~(np.uint8(1) << bit))
            count -= int(was.sum())
    return populated, count
