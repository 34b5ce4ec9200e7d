"""Consistent reads: one base version plus the in-flight overlay at one offset.

Code that reads records is written once against two small protocols, and runs on a local client's
:class:`View` (base version + overlay) or on a plain :class:`~marrow.store.ReadState`, which
satisfies them too (handy in tests)::

    def titles_of(dataset: Dataset, ids: list[int]) -> list[str | None]:
        return dataset["Title"].select(ids, ["name"])["name"]

* :class:`Dataset` — ``dataset[type]`` (a :class:`Records`), ``type in dataset``, iteration over
  type names;
* :class:`Records` — the records of one type: ``get(key)``, ``lookup(keys)`` (records, None where
  absent), ``find(field, value)`` (hash index), ``complete(field, prefix, limit)`` (prefix index),
  ``select(keys, fields)`` (chosen fields of many records at once), iteration and ``len``.

A :class:`View` is taken once per request (``client.view()``): every read through it sees the base
version and exactly the bulk updates up to its :attr:`View.offset` — each whole or not at all —
however the client moves on meanwhile. Records from the base are store record views; records from
the overlay are :class:`~marrow.raw.record.OverlayRecord` objects with the same attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from marrow.errors import NotFoundError
from marrow.raw.overlay import Overlay, TypeOverlay, normal_key
from marrow.store import TypeReader

__all__ = ["Dataset", "Records", "TypeView", "View"]


@runtime_checkable
class Records(Protocol):
    """The records of one type, read by primary key, index or in bulk."""

    def get(self, key: Any) -> Any:
        """The record with this primary key (a tuple for several fields), or None."""

    def lookup(self, keys: Sequence[Any]) -> list[Any]:
        """The records with these primary keys, in order; None where there is none."""

    def find(self, field: str, value: Any) -> list[Any]:
        """Records whose ``field`` holds ``value`` (for list and set fields: among its elements)."""

    def complete(self, field: str, prefix: str, limit: int = 10, words: bool = True) -> list[Any]:
        """Records whose ``field`` (any word of it, by default) starts with ``prefix``; shorter
        matching words first."""

    def select(self, keys: Sequence[Any], fields: Sequence[str] | None = None) -> dict[str, list[Any]]:
        """Chosen fields of the records with these keys: ``{field: [value per key]}`` (None for every
        field of a key with no record)."""

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


@runtime_checkable
class Dataset(Protocol):
    """A consistent set of types: a store version, or a view of a local client."""

    def __getitem__(self, name: str) -> Records: ...

    def __contains__(self, name: str) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...


class View:
    """One base version plus the overlay's bulk updates up to :attr:`offset`; see the module docs."""

    def __init__(self, overlay: Overlay, offset: int | None = None):
        self.overlay = overlay
        self.base = overlay.base
        self.offset = overlay.offset if offset is None else offset
        self._types: dict[str, TypeView] = {}

    @property
    def version(self) -> int | None:
        """The base version's number (None before the first version)."""
        return self.base.version if self.base is not None else None

    def __getitem__(self, name: str) -> TypeView:
        found = self._types.get(name)
        if found is None:
            if name not in self.overlay.schema:
                raise NotFoundError(f"no type {name!r} in this namespace; types: {list(self.overlay.schema)}")
            found = self._types[name] = TypeView(self, name)
        return found

    def __contains__(self, name: str) -> bool:
        return name in self.overlay.schema

    def __iter__(self) -> Iterator[str]:
        return iter(self.overlay.schema)

    def __repr__(self) -> str:
        return f"View(version={self.version}, offset={self.offset}, in_flight={len(self.overlay)})"


class TypeView:
    """The records of one type in a :class:`View`: a :class:`Records`."""

    def __init__(self, view: View, name: str):
        self.view = view
        self.name = name
        self.offset = view.offset
        base = view.base
        self.base: TypeReader | None = base[name] if base is not None and name in base else None
        self._over: TypeOverlay | None = view.overlay.types.get(name)
        self._shadowed: np.ndarray | None = None

    def shadowed(self) -> np.ndarray:
        """Ordinals of base records the overlay replaces or deletes at this view's offset."""
        if self._shadowed is None:
            over = self._over
            self._shadowed = (
                over.shadowed_ordinals(self.offset) if over is not None else np.zeros(0, dtype=np.int64)
            )
        return self._shadowed

    def _visible(self, records: list[Any]) -> list[Any]:
        """Base records the overlay does not replace at this view's offset."""
        shadowed = self.shadowed()
        if not len(shadowed):
            return records
        hidden = set(shadowed.tolist())
        return [r for r in records if r.ordinal not in hidden]

    def _in_flight(self) -> list[Any]:
        """Records the overlay holds at this view's offset (not deletes)."""
        if self._over is None:
            return []
        return [r for _, r, _ in self._over.records(self.offset) if r is not None]

    # --- by key ------------------------------------------------------------------------------------

    def get(self, key: Any) -> Any:
        """The record with this primary key, or None."""
        over = self._over
        if over is not None:
            found = over.at(normal_key(key), self.offset)
            if found is not None:
                return found[1]
        return self.base.get(key) if self.base is not None else None

    def version_of(self, key: Any) -> int:
        """The record's version: the offset of the in-flight write that made it, or the base's
        folded offset; a conditional update may expect the record unchanged since it."""
        over = self._over
        found = over.at(normal_key(key), self.offset) if over is not None else None
        return found[0] if found is not None else self.view.overlay.floor

    def lookup(self, keys: Sequence[Any]) -> list[Any]:
        """Records for many primary keys, in order; None where absent."""
        if self.base is not None:
            out: list[Any] = self.base.lookup(keys)
        else:
            out = [None] * len(keys)
        over = self._over
        if over is not None and over.versions:
            at, offset = over.at, self.offset
            for i, key in enumerate(keys):
                found = at(normal_key(key), offset)
                if found is not None:
                    out[i] = found[1]
        return out

    def select(self, keys: Sequence[Any], fields: Sequence[str] | None = None) -> dict[str, list[Any]]:
        """Chosen fields of many records by key; None for every field of a key with no record.
        Reference fields read as ordinals from the base (as ``TypeReader.read`` gives them) and as
        records from the overlay."""
        names = list(fields) if fields is not None else self.view.overlay.schema[self.name].field_names
        over = self._over
        overridden: dict[int, Any] = {}
        if over is not None and over.versions:
            for i, key in enumerate(keys):
                found = over.at(normal_key(key), self.offset)
                if found is not None:
                    overridden[i] = found[1]
        if self.base is not None:
            rest = [k for i, k in enumerate(keys) if i not in overridden] if overridden else list(keys)
            base_cols = self.base.select(rest, names)
        else:
            base_cols = {n: [None] * (len(keys) - len(overridden)) for n in names}
        if not overridden:
            return base_cols
        out: dict[str, list[Any]] = {}
        for name in names:
            column, base_values = [], iter(base_cols[name])
            for i in range(len(keys)):
                if i in overridden:
                    record = overridden[i]
                    column.append(getattr(record, name) if record is not None else None)
                else:
                    column.append(next(base_values))
            out[name] = column
        return out

    # --- indexes -----------------------------------------------------------------------------------

    def find(self, field: str, value: Any) -> list[Any]:
        """Records whose ``field`` holds ``value``: the base's hash index, then the overlay's records."""
        found = self._visible(self.base.find(field, value)) if self.base is not None else []
        in_flight = self._in_flight()
        if in_flight:
            ftype = self.view.overlay.schema[self.name].field(field).type
            collection = ftype.is_collection
            for r in in_flight:
                v = getattr(r, field)
                if v is not None and (value in v if collection else v == value):
                    found.append(r)
        return found

    def complete(self, field: str, prefix: str, limit: int = 10, words: bool = True) -> list[Any]:
        """Autocomplete over the base's prefix index and the overlay's records, shorter words first."""
        p = prefix.casefold()
        hidden = len(self.shadowed())
        base = self._visible(self.base.complete(field, prefix, limit + hidden, words)) if self.base else []
        ranked = [(_match_length(getattr(r, field), p, words), 0, i, r) for i, r in enumerate(base)]
        for i, r in enumerate(self._in_flight()):
            length = _match_length(getattr(r, field), p, words)
            if length is not None:
                ranked.append((length, 1, i, r))
        ranked.sort(key=lambda t: (t[0] if t[0] is not None else 0, t[1], t[2]))
        return [r for *_, r in ranked[:limit]]

    # --- everything --------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        if self.base is not None:
            ords = self.base.ordinals()
            shadowed = self.shadowed()
            if len(shadowed):
                ords = np.setdiff1d(ords, shadowed, assume_unique=True)
            view = self.base.view
            for o in ords.tolist():
                yield view(o)
        yield from self._in_flight()

    def __len__(self) -> int:
        count = len(self.base) if self.base is not None else 0
        over = self._over
        if over is None:
            return count
        change = over.count(self.offset)
        if change is None:
            change = sum((r is not None) - in_base for _, r, in_base in over.records(self.offset))
        return count + change

    def __repr__(self) -> str:
        return f"TypeView({self.name}, offset={self.offset})"


def _match_length(value: str | None, prefix: str, words: bool) -> int | None:
    """The length of the shortest term of ``value`` that starts with ``prefix`` (casefolded)."""
    if value is None:
        return None
    folded = value.casefold()
    terms = folded.split() if words else [folded]
    lengths = [len(t) for t in terms if t.startswith(prefix)]
    return min(lengths) if lengths else None
