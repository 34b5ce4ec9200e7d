"""Record views: one small object per read record, with a property per field.

A view holds only its ordinal; each field is a property whose getter closes over the raw buffers of
one version, so reading a field is a few index operations with no lookup through the state. View
classes are made per type per version (cheap: done once when a version is loaded).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from marrow.store._accel import ACCELERATED, speedups
from marrow.store._columns import Codes, Column
from marrow.store._packed import Packed
from marrow.store._strings import Deflate
from marrow.store.schema import FieldType

if TYPE_CHECKING:
    from marrow.store.read import TypeReader


class _PureRecord:
    __slots__ = ("_o",)

    def __init__(self, ordinal: int):
        self._o = ordinal


_RecordBase: Any = speedups.Record if ACCELERATED else _PureRecord


class RecordView(_RecordBase):
    """A record of one version. Equal views are the same record (type, version and ordinal)."""

    __slots__ = ()
    _o: int
    _reader: TypeReader
    _fields: tuple[str, ...] = ()

    @property
    def ordinal(self) -> int:
        return self._o

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecordView) and other._o == self._o and other._reader is self._reader

    def __hash__(self) -> int:
        return hash((id(self._reader), self._o))

    def __repr__(self) -> str:
        key = self._reader.schema.primary_key
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in key) if key else f"ordinal={self._o}"
        return f"{self._reader.name}({shown})"

    def to_dict(self, depth: int = 1) -> dict[str, Any]:
        """Field values as a dict; references become dicts ``depth`` levels deep, then ordinals."""
        out = {}
        for name in self._fields:
            out[name] = _plain(getattr(self, name), depth)
        return out


def _plain(v: Any, depth: int) -> Any:
    if isinstance(v, RecordView):
        return v.to_dict(depth - 1) if depth > 0 else v.ordinal
    if isinstance(v, list | tuple):
        return [_plain(x, depth) for x in v]
    if isinstance(v, frozenset | set):
        return [_plain(x, depth) for x in v]
    if isinstance(v, dict):
        return {_plain(k, depth): _plain(x, depth) for k, x in v.items()}
    return v


def code_reader(p: Packed) -> Callable[[int], int]:
    """The fastest ``i -> code`` function for a packed array."""
    if p.aligned:
        return memoryview(p.array).__getitem__
    if ACCELERATED:
        return speedups.Reader(p.array, p.bits, p.n, p.stride, p.offset)
    words = memoryview(p.array)
    stride, offset, mask = p.stride, p.offset, (1 << p.bits) - 1

    def read(i: int) -> int:
        bit = i * stride + offset
        w = bit >> 6
        s = bit & 63
        return ((words[w] >> s) | (words[w + 1] << (64 - s))) & mask

    return read


def value_reader(ftype: FieldType, codes: Codes, reader: TypeReader) -> Callable[[int], Any]:
    """``i -> value`` for scalar codes (per ordinal, or per element of a collection)."""
    get = code_reader(codes.packed)
    null = codes.packed.null
    kind = ftype.kind
    if kind in ("int", "long"):
        base = codes.base

        def read_int(i: int) -> Any:
            c = get(i)
            return None if c == null else c + base

        return read_int
    if kind == "boolean":
        return lambda i: None if (c := get(i)) == null else c == 1
    if kind in ("float", "double"):
        if codes.packed.aligned:  # an array of its own: read floats straight from it
            floats = memoryview(codes.packed.array.view(np.float32 if kind == "float" else np.float64))

            def read_float(i: int) -> Any:
                v = floats[i]
                return None if v != v and get(i) == null else v

            return read_float
        unpack = struct.Struct("<f" if kind == "float" else "<d").unpack
        size = 4 if kind == "float" else 8

        def read_float_bits(i: int) -> Any:  # a field of shared rows: decode its bit pattern
            c = get(i)
            return None if c == null else unpack(c.to_bytes(size, "little"))[0]

        return read_float_bits
    if kind in ("string", "bytes"):
        assert codes.table is not None
        text = _table_reader(kind, codes)

        def read_text(i: int) -> Any:
            c = get(i)
            return None if c == null else text(c)

        return read_text
    if kind == "ref":
        target = ref_target(reader, str(ftype.target))

        def read_ref(i: int) -> Any:
            c = get(i)
            return None if c == null else target(c)

        return read_ref
    raise AssertionError(kind)  # pragma: no cover


def _table_reader(kind: str, codes: Codes) -> Callable[[int], Any]:
    assert codes.table is not None
    ends = code_reader(codes.table.ends)
    data = memoryview(codes.table.data)
    sym = codes.table.symbols
    if sym is not None:
        dec = sym.decode
        if kind == "string":
            return lambda k: str(dec(data[ends(k - 1) if k else 0 : ends(k)]), "utf-8")
        return lambda k: dec(data[ends(k - 1) if k else 0 : ends(k)])
    if kind == "string":
        return lambda k: str(data[ends(k - 1) if k else 0 : ends(k)], "utf-8")
    return lambda k: bytes(data[ends(k - 1) if k else 0 : ends(k)])


_C_KINDS = {
    "int": "K_INT",
    "long": "K_INT",
    "boolean": "K_BOOL",
    "float": "K_FLOAT",
    "double": "K_DOUBLE",
    "ref": "K_REF",
}


def c_field(ftype: FieldType, col: Column, reader: TypeReader) -> Any:
    """The C descriptor for a scalar or string field, or None where only Python reads it."""
    if not ACCELERATED or col.shape not in ("scalar", "var") or isinstance(col.symbols, Deflate):
        return None  # deflated strings are read in Python (zlib); the rest in C
    sp = speedups
    if col.shape == "var":
        assert col.ends is not None and col.data is not None
        kind = sp.K_VAR_STR if ftype.kind == "string" else sp.K_VAR_BYTES
        sym = col.symbols
        return sp.Field(
            kind,
            col.ends.array,
            col.ends.bits,
            col.ends.n,
            1 << (col.ends.bits - 1),
            data=col.data,
            symbols=sym.words if sym else None,
            lengths=sym.lengths if sym else None,
            stride=col.ends.stride,
            offset=col.ends.offset,
        )
    assert col.codes is not None
    return c_codes(ftype, col.codes, reader)


def c_codes(ftype: FieldType, codes: Codes, reader: TypeReader | None = None) -> Any:
    """The C descriptor of a scalar encoding's codes (a scalar column's, or a collection's elements,
    read by element position); None where only Python reads it (no accelerator, or references
    without a ``reader``)."""
    if not ACCELERATED or (ftype.kind == "ref" and reader is None):
        return None
    if codes.table is not None and isinstance(codes.table.symbols, Deflate):
        return None
    sp = speedups
    p = codes.packed
    if ftype.kind in ("string", "bytes"):
        assert codes.table is not None
        kind = sp.K_DICT_STR if ftype.kind == "string" else sp.K_DICT_BYTES
        t = codes.table
        sym = t.symbols
        assert not isinstance(sym, Deflate)
        return sp.Field(
            kind,
            p.array,
            p.bits,
            p.n,
            p.null,
            0,
            t.ends.array,
            t.ends.bits,
            t.ends.n,
            t.data,
            symbols=sym.words if sym else None,
            lengths=sym.lengths if sym else None,
            stride=p.stride,
            offset=p.offset,
        )
    target = ref_target(reader, str(ftype.target)) if ftype.kind == "ref" and reader is not None else None
    return sp.Field(
        getattr(sp, _C_KINDS[ftype.kind]),
        p.array,
        p.bits,
        p.n,
        p.null,
        codes.base,
        target=target,
        stride=p.stride,
        offset=p.offset,
    )


def ref_target(reader: TypeReader, name: str) -> Callable[[int], Any]:
    """ordinal -> view of the referenced type; late-bound while that type's reader is being built."""
    target = reader.state[name]
    view = getattr(target, "view", None)
    return view if view is not None else lambda o: target.view(o)


def field_getter(ftype: FieldType, col: Column, reader: TypeReader) -> Callable[[Any], Any]:
    """The property getter of one field, closed over one version's buffers."""
    if col.shape == "scalar":
        assert col.codes is not None
        value = value_reader(ftype, col.codes, reader)
        return lambda self: value(self._o)
    assert col.ends is not None
    ends = code_reader(col.ends)
    flag = 1 << (col.ends.bits - 1)
    low = flag - 1
    if col.shape == "var":
        assert col.data is not None
        data = memoryview(col.data)
        if col.symbols is not None:
            dec = col.symbols.decode
            as_str = ftype.kind == "string"

            def get_packed(self: Any) -> Any:
                o = self._o
                e = ends(o)
                if e & flag:
                    return None
                b = dec(data[ends(o - 1) & low if o else 0 : e])
                return str(b, "utf-8") if as_str else b

            return get_packed
        if ftype.kind == "string":

            def get_str(self: Any) -> Any:
                o = self._o
                e = ends(o)
                if e & flag:
                    return None
                return str(data[ends(o - 1) & low if o else 0 : e], "utf-8")

            return get_str

        def get_bytes(self: Any) -> Any:
            o = self._o
            e = ends(o)
            if e & flag:
                return None
            return bytes(data[ends(o - 1) & low if o else 0 : e])

        return get_bytes
    assert col.codes is not None and ftype.element is not None
    element = value_reader(ftype.element, col.codes, reader)
    if ftype.kind == "map":
        assert col.values is not None and ftype.value is not None
        val = value_reader(ftype.value, col.values, reader)

        def get_map(self: Any) -> Any:
            o = self._o
            e = ends(o)
            if e & flag:
                return None
            return {element(i): val(i) for i in range(ends(o - 1) & low if o else 0, e)}

        return get_map
    wrap: Callable[[Any], Any] = frozenset if ftype.kind == "set" else list

    def get_collection(self: Any) -> Any:
        o = self._o
        e = ends(o)
        if e & flag:
            return None
        return wrap([element(i) for i in range(ends(o - 1) & low if o else 0, e)])

    return get_collection


def view_class(reader: TypeReader) -> type[RecordView]:
    """A RecordView subclass for one type of one version."""
    namespace: dict[str, Any] = {
        "__slots__": (),
        "_reader": reader,
        "_fields": tuple(reader.schema.field_names),
    }
    for f in reader.schema.fields:
        col = reader.data.columns[f.name]
        fast = c_field(f.type, col, reader)
        namespace[f.name] = (
            fast if fast is not None else property(field_getter(f.type, col, reader), doc=str(f.type))
        )
    return type(reader.name, (RecordView,), namespace)
