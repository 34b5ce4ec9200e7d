"""Encoded columns: how one field of one type is laid out in memory and in blobs.

A :class:`Column` holds one field for ordinals ``0..n-1``:

* ``scalar`` — ``codes`` has one code per ordinal. Integers are stored as ``value - base`` in the
  fewest bits; booleans as 0/1; floats and doubles as their bit patterns; references as the target's
  ordinal; strings and bytes in *dict* mode as ids into a :class:`Table` of distinct values.
* ``var`` — strings and bytes in *direct* mode: ``ends`` holds each ordinal's cumulative end offset
  into ``data`` (a byte pool), with the null flag in the top bit.
* ``list`` / ``set`` / ``map`` — ``ends`` as for ``var`` but counting elements; ``codes`` holds the
  elements (map keys), ``values`` the map values, each encoded like a scalar column.

In every column the all-ones code is null, and an ordinal that holds no record is null.
Columns are immutable; :func:`splice` builds the next version's column from this one and a patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from marrow.store._accel import speedups
from marrow.store._packed import Packed, bits_for, choose_layout
from marrow.store._packed import ranges as _ranges
from marrow.store._strings import Codec


@dataclass(frozen=True)
class Table:
    """Distinct strings (or bytes) of a dict-mode field, addressed by id; grows by appending."""

    ends: Packed  # cumulative end offset of entry k
    data: np.ndarray  # uint8
    symbols: Codec | None = None  # entries are compressed with this codec, when set

    @classmethod
    def build(cls, values: list[bytes], symbols: Codec | None = None) -> Table:
        if symbols is not None:
            data, lengths = symbols.encode(values)
        else:
            lengths = np.fromiter((len(v) for v in values), dtype=np.uint64, count=len(values))
            data = np.frombuffer(b"".join(values), dtype=np.uint8) if values else np.zeros(0, np.uint8)
        ends = np.cumsum(lengths, dtype=np.uint64)
        total = int(ends[-1]) if len(ends) else 0
        return cls(Packed.encode(ends, choose_layout(bits_for(total))), data, symbols)

    def __len__(self) -> int:
        return self.ends.n

    def entries(self) -> list[bytes]:
        ends = self.ends.decode().tolist()
        raw = self.data.tobytes()
        start = 0
        out = []
        for end in ends:
            out.append(raw[start:end])
            start = end
        if self.symbols is not None:
            return [self.symbols.decode(v) for v in out]
        return out

    def head(self, k: int) -> Table:
        """The first ``k`` entries."""
        if k == len(self):
            return self
        ends = self.ends.decode()[:k]
        total = int(ends[-1]) if k else 0
        # same width rule as build/extended, so cutting back gives the very arrays it had before
        return Table(Packed.encode(ends, choose_layout(bits_for(total))), self.data[:total], self.symbols)

    def extended(self, more: Table) -> Table:
        if len(more) == 0:
            return self
        base = int(self.ends.get(len(self) - 1)) if len(self) else 0
        ends = np.concatenate([self.ends.decode(), more.ends.decode() + np.uint64(base)])
        total = int(ends[-1])
        data = np.concatenate([self.data, more.data])
        return Table(Packed.encode(ends, choose_layout(bits_for(total))), data, self.symbols)

    @property
    def nbytes(self) -> int:
        return (
            self.ends.nbytes
            + int(self.data.nbytes)
            + (self.symbols.nbytes if self.symbols is not None else 0)
        )


@dataclass(frozen=True)
class Codes:
    """Codes of scalar values: ``packed``; ``base`` is added to integer codes; ``table`` for strings.

    ``table_start`` is only meaningful in a patch: the table is cut to that many entries before the
    patch's own table entries are appended (0 in a full column).
    """

    packed: Packed
    base: int = 0
    table: Table | None = None
    table_start: int = 0

    @property
    def nbytes(self) -> int:
        return self.packed.nbytes + (self.table.nbytes if self.table is not None else 0)


@dataclass(frozen=True)
class Column:
    shape: str  # "scalar" | "var" | "list" | "set" | "map"
    codes: Codes | None = None
    ends: Packed | None = None
    data: np.ndarray | None = None
    values: Codes | None = None
    symbols: Codec | None = None  # var columns: strings compressed with this codec, when set

    @property
    def nbytes(self) -> int:
        total = self.symbols.nbytes if self.symbols is not None else 0
        for part in (self.codes, self.values, self.ends):
            if part is not None:
                total += part.nbytes
        if self.data is not None:
            total += int(self.data.nbytes)
        return total

    @property
    def n(self) -> int:
        return self.codes.packed.n if self.shape == "scalar" else self.ends.n  # type: ignore[union-attr]

    # --- var / collection helpers ----------------------------------------------------------------

    def end_bits(self) -> int:
        assert self.ends is not None
        return self.ends.bits - 1

    def spans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, null mask) per ordinal for var and collection columns."""
        assert self.ends is not None
        raw = self.ends.decode()
        flag = np.uint64(1 << self.end_bits())
        nulls = (raw & flag) != 0
        ends = raw & (flag - np.uint64(1))
        starts = np.empty_like(ends)
        if len(ends):
            starts[0] = 0
            starts[1:] = ends[:-1]
        return starts, ends, nulls

    def take(self, ordinals: np.ndarray, whole_tables: bool = False) -> Column:
        """The rows at ``ordinals`` as a patch column, keeping this column's encoding and tables.

        The patch's tables add nothing to the tables of the column it applies to, unless
        ``whole_tables``: then they carry every entry (for a column rebuilt from nothing)."""
        ordinals = np.asarray(ordinals, dtype=np.int64)
        take = _take_codes if not whole_tables else _take_codes_whole
        if self.shape == "scalar":
            assert self.codes is not None
            return Column("scalar", codes=take(self.codes, ordinals))
        starts, ends, nulls = self.spans()
        s, e = starts[ordinals], ends[ordinals]
        idx = _ranges(s, e)
        lengths = e - s
        new_ends = _ends_code(np.cumsum(lengths, dtype=np.uint64), nulls[ordinals], self.end_bits())
        ends_p = Packed.encode(new_ends, self.ends.bits)  # type: ignore[union-attr]
        if self.shape == "var":
            assert self.data is not None
            return Column("var", ends=ends_p, data=self.data[idx], symbols=self.symbols)
        assert self.codes is not None
        values = take(self.values, idx) if self.values is not None else None
        return Column(self.shape, codes=take(self.codes, idx), ends=ends_p, values=values)


def _take_codes(codes: Codes, index: np.ndarray) -> Codes:
    packed = Packed.encode(codes.packed.gather(index), codes.packed.bits)
    table_start = len(codes.table) if codes.table is not None else 0
    empty = Table.build([], codes.table.symbols) if codes.table is not None else None
    return Codes(packed, codes.base, empty, table_start)


def _take_codes_whole(codes: Codes, index: np.ndarray) -> Codes:
    packed = Packed.encode(codes.packed.gather(index), codes.packed.bits)
    return Codes(packed, codes.base, codes.table, 0)


def _ends_code(ends: np.ndarray, nulls: np.ndarray, end_bits: int) -> np.ndarray:
    return ends | (nulls.astype(np.uint64) << np.uint64(end_bits))


def ends_packed(lengths: np.ndarray, nulls: np.ndarray, min_total: int = 0) -> Packed:
    """Pack per-ordinal lengths as cumulative end offsets with a null flag in the top bit."""
    ends = np.cumsum(lengths, dtype=np.uint64)
    total = max(int(ends[-1]) if len(ends) else 0, min_total)
    width = choose_layout(bits_for(total) + 1)
    # The null flag is the top bit of the stored width, which readers find as bits - 1.
    return Packed.encode(_ends_code(ends, nulls, width - 1), width)


# --- building the next version ------------------------------------------------------------------------


def splice(
    old: Column | None,
    patch: Column,
    capacity: int,
    cleared: np.ndarray,
    added: np.ndarray,
) -> Column:
    """The next version of a column.

    ``cleared`` are ordinals whose old rows go (removed records, and every ordinal at or past a
    shrinking capacity); ``added`` (sorted) take the rows of ``patch`` in order. ``patch`` carries
    the destination encoding (bits, base) and the table entries to append.
    """
    if patch.shape == "scalar":
        assert patch.codes is not None
        old_codes = old.codes if old is not None else None
        return Column("scalar", codes=_splice_codes(old_codes, patch.codes, capacity, cleared, added))
    # var and collections: per-ordinal spans into a payload
    if old is not None:
        o_starts, o_ends, o_nulls = old.spans()
    else:
        o_starts = o_ends = np.zeros(0, np.uint64)
        o_nulls = np.zeros(0, bool)
    p_starts, p_ends, p_nulls = patch.spans()
    old_n = len(o_ends)
    lengths = np.zeros(capacity, dtype=np.uint64)
    nulls = np.ones(capacity, dtype=bool)
    keep = min(old_n, capacity)
    lengths[:keep] = (o_ends - o_starts)[:keep]
    nulls[:keep] = o_nulls[:keep]
    lengths[cleared[cleared < capacity]] = 0
    nulls[cleared[cleared < capacity]] = True
    lengths[added] = p_ends - p_starts
    nulls[added] = p_nulls
    plan = _splice_plan(o_starts, o_ends, old_n, capacity, cleared, added, p_starts, p_ends)
    total = int(lengths.sum())
    ends = ends_packed(lengths, nulls, total)
    if patch.shape == "var":
        assert patch.data is not None
        old_data = old.data if old is not None and old.data is not None else np.zeros(0, np.uint8)
        data = _gather_two(old_data, patch.data, plan)
        return Column("var", ends=ends, data=data, symbols=patch.symbols)
    assert patch.codes is not None
    old_c = old.codes if old is not None else None
    codes = _splice_elements(old_c, patch.codes, plan)
    values = None
    if patch.values is not None:
        old_v = old.values if old is not None else None
        values = _splice_elements(old_v, patch.values, plan)
    return Column(patch.shape, codes=codes, ends=ends, values=values)


def _splice_plan(
    o_starts: np.ndarray,
    o_ends: np.ndarray,
    old_n: int,
    capacity: int,
    cleared: np.ndarray,
    added: np.ndarray,
    p_starts: np.ndarray,
    p_ends: np.ndarray,
) -> _Plan:
    """The payload of the new column as segments, in ordinal order: runs of unchanged ordinals
    (one contiguous range of the old payload each) and the rows of added ordinals (from the patch)."""
    limit = min(old_n, capacity)
    changed = np.union1d(cleared, added)
    changed = changed[changed < capacity]
    run_first = np.r_[0, changed + 1].astype(np.int64)
    run_end = np.minimum(np.r_[changed, capacity], limit).astype(np.int64)
    keep = run_first < run_end
    run_first, run_end = run_first[keep], run_end[keep]
    key = np.r_[run_first, added.astype(np.int64)]
    a = np.r_[o_starts[run_first], p_starts].astype(np.int64)
    b = np.r_[o_ends[run_end - 1], p_ends].astype(np.int64)
    from_patch = np.r_[np.zeros(len(run_first), bool), np.ones(len(added), bool)]
    order = np.argsort(key, kind="stable")
    return a[order], b[order], from_patch[order]


_Plan = tuple[np.ndarray, np.ndarray, np.ndarray]


def _gather_two(old: np.ndarray, new: np.ndarray, plan: _Plan) -> np.ndarray:
    a, b, from_patch = plan
    if speedups is not None and old.dtype == new.dtype:
        out = np.empty(int(np.maximum(b - a, 0).sum()), dtype=old.dtype)
        speedups.splice(
            np.ascontiguousarray(old),
            np.ascontiguousarray(new),
            a,
            b,
            from_patch.view(np.uint8),
            out,
            old.dtype.itemsize,
        )
        return out
    pieces = [
        (new if p else old)[x:y]
        for x, y, p in zip(a.tolist(), b.tolist(), from_patch.tolist(), strict=True)
        if y > x
    ]
    if not pieces:
        return np.zeros(0, dtype=old.dtype)
    return np.concatenate(pieces)


def _splice_elements(old: Codes | None, patch: Codes, plan: _Plan) -> Codes:
    table = _splice_table(old, patch)
    bits = patch.packed.bits
    if old is not None and old.base == patch.base and old.packed.bits == bits and patch.packed.aligned:
        # same aligned encoding: splice the stored arrays themselves, no decoding
        arr = _gather_two(old.packed.array, patch.packed.array, plan)
        return Codes(Packed(arr, bits, len(arr)), patch.base, table)
    new_codes = patch.packed.decode()
    old_codes = _rebased(old, patch) if old is not None else np.zeros(0, np.uint64)
    codes = _gather_two(old_codes, new_codes, plan)
    return Codes(Packed.encode(codes, patch.packed.bits), patch.base, table)


def _splice_table(old: Codes | None, patch: Codes) -> Table | None:
    if patch.table is None:
        return None
    if old is None or old.table is None:
        return patch.table
    return old.table.head(patch.table_start).extended(patch.table)


def _rebased(old: Codes, patch: Codes) -> np.ndarray:
    """Old codes re-expressed in the patch's base and null marker."""
    codes = old.packed.decode()
    if old.base == patch.base and old.packed.bits == patch.packed.bits:
        return codes
    nulls = codes == np.uint64(old.packed.null)
    shifted = codes + np.uint64((old.base - patch.base) % (1 << 64))
    shifted[nulls] = np.uint64(patch.packed.null)
    return shifted


def _splice_codes(
    old: Codes | None, patch: Codes, capacity: int, cleared: np.ndarray, added: np.ndarray
) -> Codes:
    table = _splice_table(old, patch)
    bits = patch.packed.bits
    null = np.uint64((1 << bits) - 1)
    if old is not None and old.packed.n == capacity and old.packed.bits == bits and old.base == patch.base:
        # Same encoding and size: copy the packed array once and write only the changed rows.
        index = np.concatenate([cleared[cleared < capacity], added]).astype(np.int64)
        codes = np.concatenate([np.full(len(index) - len(added), null, np.uint64), patch.packed.decode()])
        return Codes(old.packed.with_codes(index, codes), patch.base, table)
    full = np.full(capacity, null, dtype=np.uint64)
    if old is not None:
        rebased = _rebased(old, patch)[:capacity]
        full[: len(rebased)] = rebased
    full[cleared[cleared < capacity]] = null
    full[added] = patch.packed.decode()
    return Codes(Packed.encode(full, bits), patch.base, table)
