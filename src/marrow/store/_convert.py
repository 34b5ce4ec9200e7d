"""Python values → write-side rows: one converter function per field, validating as it goes.

A row is a tuple with one entry per field: integers, floats, booleans, strings and bytes as they are;
a reference as the ordinal of the referenced record (added first, through ``add``); a list as a tuple;
a set as a sorted tuple of distinct elements; a map as a sorted tuple of (key, value) pairs. Identical
records give identical rows, which is how the write state finds records it already has.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from marrow.errors import RecordError
from marrow.store.schema import INT_RANGE, FieldType, ObjectSchema

Add = Callable[[Any, str], int]  #: add(record, type name) -> ordinal
TypeOf = Callable[[Any], str]  #: the type name a record is written as


def converter(schema: ObjectSchema, fname: str, ftype: FieldType, add: Add, type_of: TypeOf) -> Any:
    """A function from a field's Python value to its row form; validates as it goes."""
    kind = ftype.kind
    if kind in ("list", "set", "map"):
        assert ftype.element is not None
        element = element_converter(schema, fname, ftype.element, add, type_of)
        if kind == "list":
            return lambda v: None if v is None else tuple(map(element, v))
        if kind == "set":
            return lambda v: None if v is None else tuple(sorted(set(map(element, v))))
        assert ftype.value is not None
        value = element_converter(schema, fname, ftype.value, add, type_of)

        def convert_map(v: Any) -> Any:
            if v is None:
                return None
            items = (v if isinstance(v, Mapping) else dict(v)).items()  # one value per key
            return tuple(sorted((element(k), value(x)) for k, x in items))

        return convert_map
    element = element_converter(schema, fname, ftype, add, type_of)
    return lambda v: None if v is None else element(v)


def element_converter(schema: ObjectSchema, fname: str, ftype: FieldType, add: Add, type_of: TypeOf) -> Any:
    kind = ftype.kind
    where = f"{schema.name}.{fname}"

    def fail(v: Any, what: str) -> RecordError:
        if v is None:
            return RecordError(f"{where}: a collection cannot hold null")
        return RecordError(f"{where} is {what}, but was given {v!r} ({v.__class__.__name__})")

    if kind == "ref":
        target = str(ftype.target)

        def convert_ref(v: Any) -> int:
            if isinstance(v, Mapping):
                return add(v, target)
            if v is None:
                raise fail(v, "a reference")
            actual = type_of(v)
            if actual != target:
                raise RecordError(f"{where} refers to {target}, but was given a {actual}")
            return add(v, target)

        return convert_ref
    if kind in INT_RANGE:
        lo, hi = INT_RANGE[kind]

        def convert_int(v: Any) -> int:
            if v.__class__ is not int:
                if v is None or isinstance(v, bool) or not isinstance(v, int):
                    raise fail(v, f"a {kind}")
                v = int(v)
            if not lo <= v <= hi:
                raise RecordError(f"{where} is a {kind}; {v} is outside {lo}..{hi}")
            return v

        return convert_int
    if kind == "boolean":

        def convert_bool(v: Any) -> bool:
            if v is True or v is False:
                return v
            raise fail(v, "a boolean")

        return convert_bool
    if kind in ("float", "double"):

        def convert_float(v: Any) -> float:
            if v is None or isinstance(v, bool) or not isinstance(v, int | float):
                raise fail(v, f"a {kind}")
            f = float(v)
            return f if f == f else NAN  # one NaN object, so equal rows compare equal

        return convert_float
    if kind == "string":

        def convert_str(v: Any) -> str:
            if v.__class__ is str or isinstance(v, str):
                return str(v)
            raise fail(v, "a string")

        return convert_str

    def convert_bytes(v: Any) -> bytes:
        if isinstance(v, bytes | bytearray | memoryview):
            return bytes(v)
        raise fail(v, "bytes")

    return convert_bytes


NAN = float("nan")  #: the one NaN in rows, so that equal rows compare equal


def call(convert: Any, value: Any) -> Any:
    return convert(value)


@functools.cache
def is_frozen(cls: type) -> bool:
    """Instances cannot change after creation: frozen dataclasses and frozen msgspec Structs."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is not None:
        return bool(params.frozen)
    config = getattr(cls, "__struct_config__", None)
    return bool(getattr(config, "frozen", False))
