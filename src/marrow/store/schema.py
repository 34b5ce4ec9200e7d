"""Schemas: object types with typed fields, collections and a primary key.

A schema is declared either as Python classes (dataclasses, msgspec Structs or any annotated class) or
as a small text form, and both give the same :class:`Schema`::

    Person @PrimaryKey(id) {
        long id;
        string name;
    }
    Title @PrimaryKey(id) {
        long id;
        string title;
        int year;
        list<Person> cast;
        set<string> genres;
        map<string, double> scores;
    }

Field types: ``int`` (32-bit), ``long`` (64-bit), ``float``, ``double``, ``boolean``, ``string``,
``bytes``, a reference to another object type (by its name), and ``list<T>``, ``set<T>``,
``map<K, V>`` whose elements are any of those but another collection. Every field may be null.

Invariants: every reference names a type of the schema; primary-key fields exist and are scalar.
The fingerprint is a hash of the canonical text, so two schemas with the same meaning share it.
A change is *compatible* when it only adds or removes fields or types; changing a field's type or a
primary key is not, and :meth:`Schema.check_compatible` names the field.
"""

from __future__ import annotations

import hashlib
import re
import types as pytypes
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from marrow.errors import IncompatibleSchemaError, NotFoundError, SchemaError

SCALARS = ("int", "long", "float", "double", "boolean", "string", "bytes")
COLLECTIONS = ("list", "set", "map")

INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True, slots=True)
class Kind:
    """Marks an annotation with the exact field type, as in ``Annotated[int, Kind("int")]``."""

    name: str


Int = Annotated[int, Kind("int")]  #: a 32-bit integer field (a plain ``int`` is a ``long``)
Float = Annotated[float, Kind("float")]  #: a 32-bit float field (a plain ``float`` is a ``double``)


@dataclass(frozen=True, slots=True)
class FieldType:
    """The type of a field: a scalar, a reference (``target``) or a collection of those."""

    kind: str
    target: str | None = None
    element: FieldType | None = None
    value: FieldType | None = None

    def __str__(self) -> str:
        if self.kind == "ref":
            return str(self.target)
        if self.kind == "map":
            return f"map<{self.element}, {self.value}>"
        if self.kind in ("list", "set"):
            return f"{self.kind}<{self.element}>"
        return self.kind

    @property
    def is_collection(self) -> bool:
        return self.kind in COLLECTIONS

    @property
    def is_var(self) -> bool:
        """Variable-length scalar: stored in a byte pool."""
        return self.kind in ("string", "bytes")

    def references(self) -> Iterator[str]:
        for t in (self, self.element, self.value):
            if t is not None and t.kind == "ref":
                yield str(t.target)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType


@dataclass(frozen=True)
class ObjectSchema:
    """One object type: its name, ordered fields and optional primary key."""

    name: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.name, "type")
        seen: set[str] = set()
        for f in self.fields:
            _check_name(f.name, f"field of {self.name}")
            if f.name in seen:
                raise SchemaError(f"{self.name}.{f.name} is declared twice")
            seen.add(f.name)
        for k in self.primary_key:
            if k not in seen:
                raise SchemaError(f"primary key of {self.name} names {k!r}, which is not one of its fields")
            if self.field(k).type.is_collection:
                raise SchemaError(f"primary key field {self.name}.{k} is a collection; keys must be scalar")

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise NotFoundError(f"type {self.name} has no field {name!r}; its fields are {self.field_names}")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def __str__(self) -> str:
        key = f" @PrimaryKey({', '.join(self.primary_key)})" if self.primary_key else ""
        body = "".join(f"    {f.type} {f.name};\n" for f in self.fields)
        return f"{self.name}{key} {{\n{body}}}\n"


class Schema(Mapping[str, ObjectSchema]):
    """An ordered set of object types. Types are kept in dependency order: referenced types first."""

    def __init__(self, types: Iterable[ObjectSchema]):
        by_name: dict[str, ObjectSchema] = {}
        for t in types:
            if t.name in by_name:
                raise SchemaError(f"type {t.name} is declared twice")
            by_name[t.name] = t
        for t in by_name.values():
            for f in t.fields:
                for target in f.type.references():
                    if target not in by_name:
                        raise SchemaError(
                            f"{t.name}.{f.name} refers to type {target!r}, which the schema does not declare"
                        )
        self._types = {name: by_name[name] for name in _dependency_order(by_name)}
        self.text = "".join(str(t) for t in self._types.values())
        self.fingerprint = hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @classmethod
    def parse(cls, text: str) -> Schema:
        """Read the text form (see the module docstring)."""
        return cls(_Parser(text).types())

    @classmethod
    def from_classes(cls, *classes: type) -> Schema:
        """Declare types from annotated classes, following references to other classes."""
        return cls(_from_classes(classes))

    def __getitem__(self, name: str) -> ObjectSchema:
        try:
            return self._types[name]
        except KeyError:
            raise NotFoundError(f"no type {name!r} in the schema; types: {list(self._types)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Schema({list(self._types)}, fingerprint={self.fingerprint})"

    def check_compatible(self, new: Schema) -> None:
        """Raise :class:`IncompatibleSchemaError` unless ``new`` only adds or removes fields and types."""
        for name, old_t in self._types.items():
            if name not in new:
                continue
            new_t = new[name]
            if old_t.primary_key != new_t.primary_key:
                raise IncompatibleSchemaError(
                    f"primary key of {name} changes from {old_t.primary_key} to {new_t.primary_key}; "
                    f"declare a new type instead of changing the key"
                )
            new_fields = {f.name: f for f in new_t.fields}
            for f in old_t.fields:
                g = new_fields.get(f.name)
                if g is not None and g.type != f.type:
                    raise IncompatibleSchemaError(
                        f"{name}.{f.name} changes type from {f.type} to {g.type}; add a field under a new "
                        f"name (and remove the old one) instead"
                    )


# --- text form ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(#[^\n]*)|([A-Za-z_][A-Za-z0-9_]*)|(@PrimaryKey)|([<>,{}();]))")


class _Parser:
    def __init__(self, text: str):
        self.tokens: list[tuple[str, int]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                line = text.count("\n", 0, pos) + 1
                raise SchemaError(f"schema text, line {line}: unexpected {text[pos : pos + 20]!r}")
            if not m.group(1):
                line = text.count("\n", 0, m.start(m.lastindex or 0)) + 1  # where the token starts
                self.tokens.append((m.group(2) or m.group(3) or m.group(4), line))
            pos = m.end()
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        if self.i >= len(self.tokens):
            raise SchemaError(f"schema text ends early; expected {expected or 'more'}")
        tok, line = self.tokens[self.i]
        if expected is not None and tok != expected:
            raise SchemaError(f"schema text, line {line}: expected {expected!r}, found {tok!r}")
        self.i += 1
        return tok

    def types(self) -> list[ObjectSchema]:
        out = []
        while self.peek() is not None:
            name = self.take()
            key: tuple[str, ...] = ()
            if self.peek() == "@PrimaryKey":
                self.take()
                self.take("(")
                names = [self.take()]
                while self.peek() == ",":
                    self.take()
                    names.append(self.take())
                self.take(")")
                key = tuple(names)
            self.take("{")
            fields = []
            while self.peek() != "}":
                ftype = self.field_type(allow_collection=True)
                fname = self.take()
                self.take(";")
                fields.append(Field(fname, ftype))
            self.take("}")
            out.append(ObjectSchema(name, tuple(fields), key))
        return out

    def field_type(self, allow_collection: bool) -> FieldType:
        word = self.take()
        if word in COLLECTIONS:
            if not allow_collection:
                raise SchemaError(f"schema text: a collection cannot hold another collection ({word})")
            self.take("<")
            element = self.field_type(allow_collection=False)
            value = None
            if word == "map":
                self.take(",")
                value = self.field_type(allow_collection=False)
            self.take(">")
            return FieldType(word, element=element, value=value)
        if word in SCALARS:
            return FieldType(word)
        _check_name(word, "referenced type")
        return FieldType("ref", target=word)


# --- Python class declarations ------------------------------------------------------------------------

_PY_SCALARS: dict[Any, str] = {int: "long", float: "double", bool: "boolean", str: "string", bytes: "bytes"}


def type_name(cls: type) -> str:
    return str(getattr(cls, "__type_name__", cls.__name__))


def _from_classes(classes: Iterable[type]) -> list[ObjectSchema]:
    pending = list(classes)
    done: dict[type, ObjectSchema] = {}
    while pending:
        cls = pending.pop()
        if cls in done:
            continue
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except NameError as e:
            raise SchemaError(f"cannot resolve an annotation of {cls.__name__}: {e}") from None
        fields = []
        for name, hint in hints.items():
            if name.startswith("_") or typing.get_origin(hint) is typing.ClassVar:
                continue
            fields.append(Field(name, _annotation(cls, name, hint, pending, allow_collection=True)))
        key = getattr(cls, "__primary_key__", ())
        done[cls] = ObjectSchema(
            type_name(cls), tuple(fields), (key,) if isinstance(key, str) else tuple(key)
        )
    return list(done.values())


def _annotation(cls: type, name: str, hint: Any, pending: list[type], allow_collection: bool) -> FieldType:
    where = f"{cls.__name__}.{name}"
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        kinds = [a for a in args[1:] if isinstance(a, Kind)]
        if kinds:
            return FieldType(kinds[0].name)
        return _annotation(cls, name, args[0], pending, allow_collection)
    if origin in (typing.Union, pytypes.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise SchemaError(f"{where}: a field has one type (optionally | None), not {hint}")
        return _annotation(cls, name, rest[0], pending, allow_collection)
    if hint in (list, set, frozenset, dict):  # bare, without what they hold
        kind = {list: "list", set: "set", frozenset: "set", dict: "map"}[hint]
        raise SchemaError(f"{where}: say what the {kind} holds, e.g. {hint.__name__}[str]")
    if origin in (list, set, frozenset, dict):
        if not allow_collection:
            raise SchemaError(f"{where}: a collection cannot hold another collection")
        kind = {list: "list", set: "set", frozenset: "set", dict: "map"}[origin]
        if not args:
            raise SchemaError(f"{where}: say what the {kind} holds, e.g. list[str]")
        element = _annotation(cls, name, args[0], pending, allow_collection=False)
        value = _annotation(cls, name, args[1], pending, allow_collection=False) if kind == "map" else None
        return FieldType(kind, element=element, value=value)
    if hint in _PY_SCALARS:
        return FieldType(_PY_SCALARS[hint])
    if isinstance(hint, type):
        pending.append(hint)
        return FieldType("ref", target=type_name(hint))
    raise SchemaError(f"{where}: cannot store a field of type {hint!r}")


# --- helpers -----------------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name) or name in SCALARS or name in COLLECTIONS:
        raise SchemaError(f"{name!r} is not a valid name for a {what}")


def _dependency_order(types: dict[str, ObjectSchema]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:  # a cycle of references: fine, order is then by first visit
            return
        state[name] = 1
        for f in types[name].fields:
            for target in f.type.references():
                visit(target)
        state[name] = 2
        order.append(name)

    for name in sorted(types):
        visit(name)
    return order
