"""Records of the in-flight overlay: read like the store's record views, built from log rows.

A record written but not yet folded into a version has no ordinal; it is an instance of a small
class per type (named after the type, so the store writes it back as that type when folding) whose
fields are plain attributes. Values read the way a :class:`~marrow.store.RecordView` gives them:
lists as ``list``, sets as ``frozenset``, maps as ``dict``, a reference as a record of the target
type. Records are immutable and compare equal when their type and every field are equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from marrow.store import Schema
from marrow.store.schema import FieldType

__all__ = ["OverlayRecord", "RecordClasses"]


class OverlayRecord:
    """A record of the in-flight overlay (one subclass per type)."""

    __slots__ = ()
    __type_name__: ClassVar[str] = ""
    _fields: ClassVar[tuple[str, ...]] = ()
    _key: ClassVar[tuple[str, ...]] = ()
    _readers: ClassVar[tuple[Callable[[Any], Any], ...]] = ()

    def __init__(self, row: list[Any] | tuple[Any, ...]):
        for name, read, value in zip(self._fields, self._readers, row, strict=True):
            object.__setattr__(self, name, None if value is None else read(value))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self.__type_name__} records are read-only; write a bulk update instead")

    @property
    def ordinal(self) -> None:
        """Always None: a record still in flight has no ordinal in any version."""
        return None

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, OverlayRecord)
            and other.__type_name__ == self.__type_name__
            and other._values() == self._values()
        )

    def __hash__(self) -> int:
        return hash((self.__type_name__, *(getattr(self, k) for k in self._key)))

    def __repr__(self) -> str:
        names = self._key or self._fields
        return f"{self.__type_name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in names)})"

    def to_dict(self, depth: int = 1) -> dict[str, Any]:
        """Field values as a dict; nested records become dicts (``depth`` is accepted for the same
        signature as a record view's; in-flight records have no ordinals to stop at)."""
        return {name: _plain(getattr(self, name), depth) for name in self._fields}


def _plain(v: Any, depth: int) -> Any:
    if hasattr(v, "to_dict"):
        return v.to_dict(depth - 1)
    if isinstance(v, list | frozenset):
        return [_plain(x, depth) for x in v]
    if isinstance(v, dict):
        return {_plain(k, depth): _plain(x, depth) for k, x in v.items()}
    return v


class RecordClasses:
    """The record class of each type of one schema: ``classes["Title"](row)``."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self._classes: dict[str, type[OverlayRecord]] = {}
        for name in schema:  # dependency order: referenced types first
            self._classes[name] = self._make(name)

    def __getitem__(self, name: str) -> type[OverlayRecord]:
        return self._classes[name]

    def _make(self, name: str) -> type[OverlayRecord]:
        t = self.schema[name]
        readers = tuple(self._reader(f.type) for f in t.fields)
        namespace = {
            "__slots__": tuple(t.field_names),
            "__type_name__": name,
            "_fields": tuple(t.field_names),
            "_key": tuple(t.primary_key),
            "_readers": readers,
        }
        return type(name, (OverlayRecord,), namespace)

    def _reader(self, ftype: FieldType) -> Callable[[Any], Any]:
        kind = ftype.kind
        if kind in ("list", "set", "map"):
            assert ftype.element is not None
            element = self._element(ftype.element)
            if kind == "list":
                return lambda v: [element(x) for x in v]
            if kind == "set":
                return lambda v: frozenset(element(x) for x in v)
            assert ftype.value is not None
            value = self._element(ftype.value)
            return lambda v: {element(k): value(x) for k, x in v}
        return self._element(ftype)

    def _element(self, ftype: FieldType) -> Callable[[Any], Any]:
        if ftype.kind == "ref":
            classes, target = self._classes, str(ftype.target)
            return lambda v: classes[target](v)
        if ftype.kind == "bytes":
            return bytes
        return _same

    def record(self, type: str, row: list[Any] | tuple[Any, ...]) -> OverlayRecord:
        return self._classes[type](row)


def _same(v: Any) -> Any:
    return v
