"""What changed between versions: a diff of any two states, and a history of the last versions.

:func:`diff` compares two states type by type, by primary key: records added, removed and changed
(a changed record has the same key and different field values). A reference is compared by the
ordinal it holds: a referenced record that changed has a new ordinal, so the records pointing to it
have changed too, as in Hollow. (Between versions far apart, an ordinal freed and reused may hide
such a change.) Types without a primary key are compared by record count only.

:class:`History` is a consumer's refresh listener that keeps the diff of each refresh for the last
``limit`` versions, oldest first.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marrow.store.read import ReadState, TypeReader


@dataclass
class TypeDiff:
    """How one type differs between two versions (keys as the primary key's values)."""

    type: str
    added: list[Any] = field(default_factory=list)
    removed: list[Any] = field(default_factory=list)
    changed: list[Any] = field(default_factory=list)
    count_before: int = 0
    count_after: int = 0

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed) and self.count_before == self.count_after

    def as_dict(self, limit: int | None = None) -> dict[str, Any]:
        cut = slice(None, limit)
        return {
            "type": self.type,
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "count_before": self.count_before,
            "count_after": self.count_after,
            "added_keys": _plain(self.added[cut]),
            "removed_keys": _plain(self.removed[cut]),
            "changed_keys": _plain(self.changed[cut]),
        }


@dataclass
class VersionDiff:
    """The differences between two versions, per type."""

    before: int | None
    after: int | None
    types: dict[str, TypeDiff]

    def as_dict(self, limit: int | None = 100) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "types": {name: d.as_dict(limit) for name, d in self.types.items() if not d.is_empty},
        }


def diff(before: ReadState | None, after: ReadState) -> VersionDiff:
    """Records added, removed and changed, per type, from ``before`` (None: empty) to ``after``."""
    names = list(after.types) + [n for n in (before.types if before else {}) if n not in after.types]
    out = {}
    for name in names:
        a = before[name] if before is not None and name in before else None
        b = after[name] if name in after else None  # noqa: SIM401 - ReadState is not a dict
        out[name] = _type_diff(name, a, b)
    return VersionDiff(before.version if before else None, after.version, out)


def _type_diff(name: str, a: TypeReader | None, b: TypeReader | None) -> TypeDiff:
    d = TypeDiff(name, count_before=len(a) if a else 0, count_after=len(b) if b else 0)
    schema = (b or a).schema  # type: ignore[union-attr]
    if not schema.primary_key:
        return d
    keys_a = _keys(a)
    keys_b = _keys(b)
    d.added = sorted((k for k in keys_b if k not in keys_a), key=_sortable)
    d.removed = sorted((k for k in keys_a if k not in keys_b), key=_sortable)
    common = [k for k in keys_b if k in keys_a]
    if common and a is not None and b is not None:
        fields = [f for f in b.schema.field_names if f in a.schema.field_names]
        oa = np.array([keys_a[k] for k in common], dtype=np.int64)
        ob = np.array([keys_b[k] for k in common], dtype=np.int64)
        va, vb = a.read(oa, fields), b.read(ob, fields)
        differs = np.zeros(len(common), dtype=bool)
        for f in fields:
            differs |= np.fromiter(
                (_differ(x, y) for x, y in zip(va[f], vb[f], strict=True)), bool, len(common)
            )
        d.changed = sorted((k for k, c in zip(common, differs.tolist(), strict=True) if c), key=_sortable)
    return d


def _differ(x: Any, y: Any) -> bool:
    """x != y, except that NaN equals NaN (an unchanged NaN is not a change)."""
    return x != y and not (isinstance(x, float) and isinstance(y, float) and x != x and y != y)


def _keys(reader: TypeReader | None) -> dict[Any, int]:
    """Primary key -> ordinal for every record."""
    if reader is None:
        return {}
    ords = reader.ordinals()
    cols = reader.read(ords, list(reader.schema.primary_key))
    values = list(zip(*cols.values(), strict=True))
    keys = [v[0] if len(v) == 1 else v for v in values]
    return dict(zip(keys, ords.tolist(), strict=True))


def _sortable(key: Any) -> tuple[str, Any]:
    return (type(key).__name__, key) if not isinstance(key, tuple) else ("tuple", tuple(map(str, key)))


def _plain(keys: list[Any]) -> list[Any]:
    return [list(k) if isinstance(k, tuple) else k for k in keys]


class History:
    """The diffs of a consumer's last ``limit`` refreshes; pass it as a refresh listener."""

    def __init__(self, limit: int = 20):
        self.limit = limit
        self._entries: deque[VersionDiff] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def __call__(self, previous: ReadState | None, current: ReadState) -> None:
        entry = diff(previous, current)
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[VersionDiff]:
        """Oldest first."""
        with self._lock:
            return list(self._entries)
