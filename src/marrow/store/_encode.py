"""Python values → patch columns (write side), and codes → Python values (read side).

The encoder picks each column's encoding: integers as ``value - base`` in the fewest bits that hold
every value the column has held (ranges only widen, so a patch rarely re-encodes a whole column),
strings in *dict* mode (ids into a table of distinct values) when fewer than half the values are
distinct and in *direct* mode (a byte pool) otherwise. The mode is chosen when a column is first
written and kept afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

import numpy as np

from marrow.errors import RecordError
from marrow.store._columns import Codes, Column, Table, _ranges, ends_packed
from marrow.store._packed import Packed, bits_for, choose_layout
from marrow.store._strings import Codec, train
from marrow.store.schema import FieldType

DICT_MODE_MAX_DISTINCT = 0.5  # dict mode when distinct values / values is at most this
_MASK64 = (1 << 64) - 1
_FLOAT_BITS = {"float": 32, "double": 64}
_FLOAT_DTYPES = {"float": (np.float32, np.uint32), "double": (np.float64, np.uint64)}


class TableIds:
    """The producer's map from a table's entries to their ids; new entries are appended."""

    __slots__ = ("ids", "size")

    def __init__(self, table: Table | None):
        self.ids: dict[bytes, int] = {}
        if table is not None:
            for i, entry in enumerate(table.entries()):
                self.ids.setdefault(entry, i)
        self.size = len(table) if table is not None else 0


def to_bytes(kind: str, value: Any) -> bytes:
    return value.encode() if kind == "string" else bytes(value)


def encode_codes(
    ftype: FieldType, values: Sequence[Any], old: Codes | None, ids: TableIds | None, where: str = "field"
) -> Codes:
    """Encode scalar values (None is null) with an encoding that also holds every old code."""
    kind = ftype.kind
    n = len(values)
    if kind in _FLOAT_BITS:
        ftyp, utyp = _FLOAT_DTYPES[kind]
        arr = np.array([math.nan if v is None else v for v in values], dtype=ftyp)
        codes = arr.view(utyp).astype(np.uint64)
        bits = _FLOAT_BITS[kind]
        nan = np.isnan(arr)
        if nan.any():
            canonical = np.array([math.nan], dtype=ftyp).view(utyp).astype(np.uint64)[0]
            codes[nan] = canonical
        codes[[i for i, v in enumerate(values) if v is None]] = np.uint64((1 << bits) - 1)
        return Codes(Packed.encode(codes, bits), 0)
    if kind in ("string", "bytes"):
        assert ids is not None
        new_entries: list[bytes] = []
        table_start = ids.size
        out = np.empty(n, dtype=np.uint64)
        nulls = []
        for i, v in enumerate(values):
            if v is None:
                nulls.append(i)
                continue
            b = to_bytes(kind, v)
            k = ids.ids.get(b)
            if k is None:
                k = ids.ids[b] = ids.size
                ids.size += 1
                new_entries.append(b)
            out[i] = k
        bits = choose_layout(bits_for(ids.size))
        if old is not None and bits <= old.packed.bits:
            bits = old.packed.bits
        out[nulls] = np.uint64((1 << bits) - 1)
        if old is not None and old.table is not None:
            symbols = old.table.symbols  # keep the column's table, so old and new entries agree
        else:
            symbols = train(new_entries, deflate=False)  # tables are read in bulk: keep them on the C path
        return Codes(Packed.encode(out, bits), 0, Table.build(new_entries, symbols), table_start)
    # integers, booleans and references
    null_at = [i for i, v in enumerate(values) if v is None]
    ints = [0 if v is None else int(v) for v in values]
    present = [x for x, v in zip(ints, values, strict=True) if v is not None]
    if kind in ("ref", "boolean"):  # codes are the values themselves
        lo, hi = 0, max(present, default=0)
    else:
        lo, hi = min(present, default=0), max(present, default=0)
    if old is not None and (not present or (lo >= old.base and hi <= old.base + old.packed.null - 1)):
        base, bits = old.base, old.packed.bits  # the old encoding holds every new value
    else:
        if old is not None:  # the column is re-coded: widen to what it actually holds, not could hold
            old_codes = old.packed.decode()
            held = old_codes[old_codes != np.uint64(old.packed.null)]
            if len(held):
                lo = min(lo, old.base + int(held.min())) if present else old.base + int(held.min())
                hi = max(hi, old.base + int(held.max())) if present else old.base + int(held.max())
        base = lo
        need = bits_for(hi - base + 1)  # + 1: the all-ones code is null
        if need > 64:
            raise RecordError(
                f"{where}: values from {lo} to {hi} use every 64-bit code, leaving none for null; "
                f"narrow the range by one value"
            )
        bits = choose_layout(need)
    codes = np.array(ints, dtype=np.int64).view(np.uint64) - np.uint64(base & _MASK64)
    codes[null_at] = np.uint64((1 << bits) - 1)
    return Codes(Packed.encode(codes, bits), base)


def encode_patch(
    ftype: FieldType,
    values: Sequence[Any],
    old: Column | None,
    tables: dict[str, TableIds],
    where: str = "field",
) -> Column:
    """A patch column with the given rows (one value per added ordinal)."""
    if ftype.is_collection:
        assert ftype.element is not None
        nulls = np.array([v is None for v in values], dtype=bool)
        lengths = np.fromiter(
            (0 if v is None else len(v) for v in values), dtype=np.uint64, count=len(values)
        )
        if ftype.kind == "map":
            assert ftype.value is not None
            keys = [k for v in values if v is not None for k, _ in v]
            vals = [x for v in values if v is not None for _, x in v]
            kc = encode_codes(
                ftype.element,
                keys,
                _part(old, "codes"),
                _ids(tables, "keys", ftype.element, old, "codes"),
                where,
            )
            vc = encode_codes(
                ftype.value,
                vals,
                _part(old, "values"),
                _ids(tables, "values", ftype.value, old, "values"),
                where,
            )
            return Column("map", codes=kc, ends=ends_packed(lengths, nulls), values=vc)
        elems = [e for v in values if v is not None for e in v]
        ec = encode_codes(
            ftype.element,
            elems,
            _part(old, "codes"),
            _ids(tables, "codes", ftype.element, old, "codes"),
            where,
        )
        return Column(ftype.kind, codes=ec, ends=ends_packed(lengths, nulls))
    if ftype.is_var and not _dict_mode(old, values):
        nulls = np.array([v is None for v in values], dtype=bool)
        raw = [b"" if v is None else to_bytes(ftype.kind, v) for v in values]
        symbols = old.symbols if old is not None else train(raw)
        if symbols is not None:
            data, lengths = symbols.encode(raw)
        else:
            lengths = np.fromiter((len(b) for b in raw), dtype=np.uint64, count=len(raw))
            data = np.frombuffer(b"".join(raw), dtype=np.uint8).copy() if raw else np.zeros(0, np.uint8)
        return Column("var", ends=ends_packed(lengths, nulls), data=data, symbols=symbols)
    ids = _ids(tables, "codes", ftype, old, "codes") if ftype.is_var else None
    return Column("scalar", codes=encode_codes(ftype, values, _part(old, "codes"), ids, where))


def _dict_mode(old: Column | None, values: Sequence[Any]) -> bool:
    if old is not None:
        return old.shape == "scalar"
    present = [v for v in values if v is not None]
    if len(present) < 16:
        return False
    return len(set(present)) <= DICT_MODE_MAX_DISTINCT * len(present)


def _part(old: Column | None, part: str) -> Codes | None:
    return getattr(old, part) if old is not None else None


def _ids(
    tables: dict[str, TableIds], key: str, ftype: FieldType, old: Column | None, part: str
) -> TableIds | None:
    if not ftype.is_var:
        return None
    if key not in tables:
        codes = _part(old, part)
        tables[key] = TableIds(codes.table if codes is not None else None)
    return tables[key]


# --- read side ---------------------------------------------------------------------------------------


def decode_codes(ftype: FieldType, codes: Codes, raw: np.ndarray) -> list[Any]:
    """Python values for an array of codes (uint64) of a scalar encoding."""
    kind = ftype.kind
    null = np.uint64(codes.packed.null)
    nulls = raw == null
    if kind in _FLOAT_BITS:
        ftyp, utyp = _FLOAT_DTYPES[kind]
        out = raw.astype(utyp).view(ftyp).tolist()
    elif kind in ("string", "bytes"):
        assert codes.table is not None
        out = table_values(kind, codes.table, raw, nulls)
    elif kind == "boolean":
        out = (raw == np.uint64(1)).tolist()
    else:
        out = (raw + np.uint64(codes.base & _MASK64)).view(np.int64).tolist()
    if nulls.any():
        for i in np.flatnonzero(nulls).tolist():
            out[i] = None
    return out


def table_values(kind: str, table: Table, ids: np.ndarray, nulls: np.ndarray) -> list[Any]:
    safe = np.where(nulls, 0, ids).astype(np.int64)
    ends = table.ends.gather(safe) if len(table) else np.zeros(len(ids), np.uint64)
    starts = np.where(safe > 0, table.ends.gather(np.maximum(safe - 1, 0)), 0) if len(table) else ends
    return slices(kind, table.data, starts, ends, table.symbols)


def slices(
    kind: str, data: np.ndarray, starts: np.ndarray, ends: np.ndarray, symbols: Codec | None = None
) -> list[Any]:
    raw = memoryview(data)
    if symbols is not None:
        dec = symbols.decode
        pairs = zip(starts.tolist(), ends.tolist(), strict=True)
        if kind == "string":
            return [str(dec(raw[s:e]), "utf-8") for s, e in pairs]
        return [dec(raw[s:e]) for s, e in pairs]
    if kind == "string":
        return [str(raw[s:e], "utf-8") for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    return [bytes(raw[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def empty_patch(ftype: FieldType) -> Column:
    return encode_patch(ftype, [], None, {})


def _spans(col: Column, ords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end offsets (into the data or elements) of a var or collection column's records,
    and which records are null."""
    assert col.ends is not None
    flag = np.uint64(1 << (col.ends.bits - 1))
    e_raw = col.ends.gather(ords)
    prev = col.ends.gather(np.maximum(ords - 1, 0)) & (flag - np.uint64(1))
    starts = np.where(ords > 0, prev, np.uint64(0))
    return starts, e_raw & (flag - np.uint64(1)), (e_raw & flag) != 0


def col_spans(col: Column, ords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end element offsets of a collection column's records (a null record spans none)."""
    starts, ends, _ = _spans(col, ords)
    return starts, ends


def column_values(
    ftype: FieldType,
    col: Column,
    ords: np.ndarray,
    elements: Callable[[np.ndarray], list[Any]] | None = None,
    values: Callable[[np.ndarray], list[Any]] | None = None,
) -> list[Any]:
    """Python values of one column at ``ords`` (references as ordinals). For a collection,
    ``elements`` / ``values`` may decode its element / map-value codes by position (the C
    accelerator's descriptors do it without a Python call per element)."""
    if col.shape == "scalar":
        assert col.codes is not None
        return decode_codes(ftype, col.codes, col.codes.packed.gather(ords))
    starts, ends, nulls = _spans(col, ords)
    if col.shape == "var":
        assert col.data is not None
        out = slices(ftype.kind, col.data, starts, ends, col.symbols)
    else:
        assert col.codes is not None and ftype.element is not None
        idx = _ranges(starts, ends)
        if elements is not None:
            elems = elements(idx)
        else:
            elems = decode_codes(ftype.element, col.codes, col.codes.packed.gather(idx))
        vals = None
        if col.values is not None and ftype.value is not None:
            if values is not None:
                vals = values(idx)
            else:
                vals = decode_codes(ftype.value, col.values, col.values.packed.gather(idx))
        counts = (ends - starts).tolist()
        if vals is not None:
            pairs = iter(zip(elems, vals, strict=True))
            out = [dict(islice(pairs, n)) for n in counts]
        elif ftype.kind == "set":
            items = iter(elems)
            out = [frozenset(islice(items, n)) for n in counts]
        else:
            bounds = np.cumsum(counts).tolist()
            out = [elems[e - n : e] for e, n in zip(bounds, counts, strict=True)]
    if nulls.any():
        for i in np.flatnonzero(nulls).tolist():
            out[i] = None
    return out
