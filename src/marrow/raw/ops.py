"""Bulk updates: the writes a writer is asked for, validated against the schema, and their log form.

What callers build::

    writer.bulk_update(
        [Upsert(title), Upsert({"id": 7, "name": "Dark"}, type="Title"), Delete("Title", 3)],
        expect=[Expect.absent("Title", 7), Expect.fields("Title", 9, revision=4)],
        request_id="save-1234",
    )

What the log holds: a :class:`BulkUpdate` — the request id and one :class:`Change` per record (type,
primary key, and the record's values in field order, or None for a delete), encoded with msgpack.
Values are in the store's *row form* (lists as arrays, sets sorted and distinct, maps as sorted
(key, value) pairs, a reference as the referenced record's own values), produced by the store's
own converters (``marrow.store._convert``): a value the store would refuse at folding is refused
here, before anything is appended.

Rules that keep folding from ever failing on an acknowledged write: every written type has a
primary key; a bulk update names each record at most once; and a record of a keyed type that
another type refers to can be added but not changed or deleted (a kept referrer would point at the
old record, and two records would share a key, or at nothing): the writer refuses a write that would
(see :meth:`Validator.keyed_records`). Types referred to without a primary key are plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from marrow.errors import NotFoundError, RecordError, SchemaError
from marrow.store import Schema
from marrow.store._convert import converter
from marrow.store.schema import ObjectSchema, type_name

__all__ = ["BulkUpdate", "Change", "Delete", "Expect", "Upsert", "Validator"]


@dataclass(frozen=True, slots=True)
class Upsert:
    """Add ``record``, or replace the record with its primary key. ``type`` defaults to the record's
    class name (``__type_name__``); a mapping needs it."""

    record: Any
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the record of ``type`` with primary key ``key`` (a tuple for a key of several fields);
    deleting a record that does not exist is not an error."""

    type: str
    key: Any


Op = Upsert | Delete


@dataclass(frozen=True, slots=True)
class Expect:
    """An expectation of a conditional bulk update about the current record of ``type`` / ``key``.

    ``present``: True, it must exist; False, it must not. ``fields``: it must exist and hold these
    values. ``version``: it must not have been written after that offset (the offset of the view it
    was read from, or the record's own version as a view reports it).
    """

    type: str
    key: Any
    present: bool | None = None
    fields: Mapping[str, Any] | None = None
    version: int | None = None

    @classmethod
    def absent(cls, type: str, key: Any) -> Expect:
        return cls(type, key, present=False)

    @classmethod
    def exists(cls, type: str, key: Any) -> Expect:
        return cls(type, key, present=True)

    @classmethod
    def values(cls, type: str, key: Any, **fields: Any) -> Expect:
        return cls(type, key, present=True, fields=fields)

    @classmethod
    def unchanged_since(cls, type: str, key: Any, version: int) -> Expect:
        return cls(type, key, version=version)


class Change(msgspec.Struct, array_like=True, frozen=True):
    """One record of a bulk update as the log holds it: ``values`` None deletes it."""

    type: str
    key: Any  # the primary key's value; a list for a key of several fields
    values: list[Any] | None


class BulkUpdate(msgspec.Struct, array_like=True, frozen=True):
    """One log entry: a bulk update (all of it, or none, is visible), or, with no changes, the fence
    a new writer appends when it takes over."""

    request_id: str | None
    changes: list[Change] = msgspec.field(default_factory=list)

    def encode(self) -> bytes:
        return _ENCODER.encode(self)

    @staticmethod
    def decode(payload: bytes) -> BulkUpdate:
        return _DECODER.decode(payload)


class _Nested:
    """A referenced record inside a row: its values; hashable and ordered so sets can hold it."""

    __slots__ = ("_key", "values")

    def __init__(self, values: tuple[Any, ...]):
        self.values = values
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = _ENCODER.encode(self.values)
        return self._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Nested) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __lt__(self, other: _Nested) -> bool:
        return self.key < other.key


def plain(row: tuple[Any, ...]) -> list[Any]:
    """A row as the log holds it (and as decoding gives it back): arrays are lists, a referenced
    record is the list of its values."""
    return [_plain(v) for v in row]


def _plain(value: Any) -> Any:
    if isinstance(value, _Nested):
        return plain(value.values)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _enc_hook(value: Any) -> Any:
    if isinstance(value, _Nested):
        return value.values
    raise NotImplementedError(f"cannot encode {type(value).__name__} in a bulk update")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_DECODER = msgspec.msgpack.Decoder(BulkUpdate)


class _Type:
    """Validation of one type: converters per field, key positions."""

    def __init__(self, schema: ObjectSchema, validator: Validator):
        self.schema = schema
        self.names = schema.field_names
        self.known = frozenset(self.names)
        self.converters = [
            converter(schema, f.name, f.type, validator._add, validator._type_of) for f in schema.fields
        ]
        self.by_name = dict(zip(self.names, self.converters, strict=True))
        self.key_index = [self.names.index(k) for k in schema.primary_key]
        self.has_refs = any(True for f in schema.fields for _ in f.type.references())


class Validator:
    """Checks writes against a schema and brings them to their log form."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self._types: dict[str, _Type] = {}
        self.referenced = {
            target: f"{t.name}.{f.name}"
            for t in schema.values()
            for f in t.fields
            for target in f.type.references()
        }

    def type(self, name: str) -> _Type:
        found = self._types.get(name)
        if found is None:
            try:
                schema = self.schema[name]
            except NotFoundError:
                raise SchemaError(f"no type {name!r} in the schema; types: {list(self.schema)}") from None
            found = self._types[name] = _Type(schema, self)
        return found

    def _type_of(self, value: Any) -> str:
        return type_name(value.__class__)

    def _add(self, value: Any, type: str) -> Any:
        """The converters' ``add``: a referenced record becomes its own row, nested."""
        return _Nested(self.row(type, value))

    def row(self, type: str, record: Any) -> tuple[Any, ...]:
        """The record's values in field order, in row form; raises RecordError naming what is wrong."""
        t = self.type(type)
        if isinstance(record, Mapping):
            unknown = set(record).difference(t.known)
            if unknown:
                raise RecordError(f"{type} has no field {sorted(unknown)[0]!r}; its fields are {t.names}")
            values = [record.get(name) for name in t.names]
        else:
            values = [getattr(record, name, None) for name in t.names]
        return tuple(convert(v) for convert, v in zip(t.converters, values, strict=True))

    def key(self, type: str, key: Any) -> Any:
        """A primary key in its normal form: the value for a key of one field, else a tuple."""
        t = self.keyed(type)
        parts = tuple(key) if isinstance(key, tuple | list) else (key,)
        if len(parts) != len(t.key_index):
            raise RecordError(
                f"the primary key of {type} is ({', '.join(t.schema.primary_key)}); {key!r} does not fit it"
            )
        out = []
        for name, part in zip(t.schema.primary_key, parts, strict=True):
            if part is None:
                raise RecordError(f"the primary key {type}.{name} cannot be null")
            out.append(t.by_name[name](part))
        return out[0] if len(out) == 1 else tuple(out)

    def keyed(self, type: str) -> _Type:
        t = self.type(type)
        if not t.key_index:
            raise SchemaError(f"type {type} has no primary key; the writer writes records by primary key")
        return t

    def change(self, op: Op) -> Change:
        """An operation validated and in log form."""
        if isinstance(op, Upsert):
            record = op.record
            if op.type is None and isinstance(record, Mapping):
                raise RecordError("an upsert of a mapping needs its type: Upsert(record, type='Title')")
            name = op.type or self._type_of(record)
            t = self.keyed(name)
            row = self.row(name, record)
            parts = [row[i] for i in t.key_index]
            if any(p is None for p in parts):
                missing = t.schema.primary_key[parts.index(None)]
                raise RecordError(f"the primary key {name}.{missing} of an upserted record is null")
            return Change(name, parts[0] if len(parts) == 1 else tuple(parts), plain(row))
        if isinstance(op, Delete):
            key = self.key(op.type, op.key)
            if op.type in self.referenced:
                raise RecordError(
                    f"records of {op.type} cannot be deleted by key: {self.referenced[op.type]} refers to "
                    f"{op.type}, and a kept referrer would point at nothing; replace the referrers instead"
                )
            return Change(op.type, key, None)
        raise RecordError(f"a bulk update holds Upsert and Delete operations, not {op!r}")

    def changes(self, ops: Iterable[Op]) -> list[Change]:
        """Every operation validated; refuses a bulk update that names a record twice."""
        out = [self.change(op) for op in ops]
        seen: set[tuple[str, Any]] = set()
        for c in out:
            if (c.type, c.key) in seen:
                raise RecordError(f"the bulk update names {c.type} {c.key!r} twice; name each record once")
            seen.add((c.type, c.key))
        return out

    def keyed_records(self, change: Change) -> list[tuple[str, Any, list[Any]]]:
        """(type, key, row) of every record of a referenced, keyed type an upsert writes: itself, if
        other types refer to its type, and each keyed record it refers to, however deeply."""
        out: list[tuple[str, Any, list[Any]]] = []
        if change.values is None:
            return out
        if change.type in self.referenced:
            out.append((change.type, change.key, change.values))
        if self.type(change.type).has_refs:
            self._walk(change.type, change.values, out)
        return out

    def _walk(self, type: str, row: list[Any], out: list[tuple[str, Any, list[Any]]]) -> None:
        for f, value in zip(self.type(type).schema.fields, row, strict=True):
            if value is None:
                continue
            ftype = f.type
            if ftype.kind == "ref":
                self._nested(str(ftype.target), value, out)
            elif ftype.kind in ("list", "set") and ftype.element is not None and ftype.element.kind == "ref":
                for v in value:
                    self._nested(str(ftype.element.target), v, out)
            elif ftype.kind == "map" and ftype.element is not None and ftype.value is not None:
                for k, v in value:
                    if ftype.element.kind == "ref":
                        self._nested(str(ftype.element.target), k, out)
                    if ftype.value.kind == "ref":
                        self._nested(str(ftype.value.target), v, out)

    def _nested(self, type: str, row: list[Any], out: list[tuple[str, Any, list[Any]]]) -> None:
        t = self.type(type)
        if t.key_index:
            parts = [row[i] for i in t.key_index]
            out.append((type, parts[0] if len(parts) == 1 else tuple(parts), row))
        self._walk(type, row, out)

    def value(self, type: str, name: str, value: Any) -> Any:
        """One field's value in row form (to compare an expectation with a record)."""
        t = self.type(type)
        if name not in t.by_name:
            raise RecordError(f"{type} has no field {name!r}; its fields are {t.names}")
        return t.by_name[name](value)
