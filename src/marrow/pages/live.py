"""In-flight records on a page: what the overlay of a local client's view changed since its base.

Page construction selects rows from its base version's :class:`~marrow.pages.catalogue.Catalogue`
(arrays, computed once per version) and reads cards in bulk from the base. Records written since —
the in-flight overlay of a :class:`~marrow.raw.View` — must still show as written: an edited title
shows its new name, a deleted one disappears, one whose availability changed is re-checked. Those
base records are few (the overlay holds seconds of writes); :class:`Live` looks them up once per
fragment. Records added in flight (not in the base at all) appear in rows once folded into a version,
and at once on their own pages and in previews.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marrow.pages.catalogue import Catalogue


@dataclass
class Live:
    """Per type, the base ordinals the overlay replaced, with their record now (None: deleted)."""

    by_type: dict[str, dict[int, Any]] = field(default_factory=dict)
    # per audience: the base's allowed mask, corrected for the titles the overlay changed
    _allowed: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def of(cls, view: Any, cat: Catalogue) -> Live:
        out = cls()
        if view is cat.state:  # a plain store version: nothing in flight
            return out
        for name in ("Title", "Story"):
            if name not in view or name not in cat.state:
                continue
            shadowed = getattr(view[name], "shadowed", None)
            ords = shadowed() if shadowed is not None else np.zeros(0, dtype=np.int64)
            if len(ords):
                ids = cat.state[name].array("id", ords).tolist()
                out.by_type[name] = dict(zip(ords.tolist(), view[name].lookup(ids), strict=True))
        return out

    def __getitem__(self, name: str) -> dict[int, Any]:
        return self.by_type.get(name, {})

    def eligible(self, cat: Catalogue, ords: np.ndarray, country: str, maturity: int) -> np.ndarray:
        """``ords`` (Title ordinals of ``cat``'s version) without the titles the visitor may not see:
        the base's verdict (:meth:`Catalogue.eligible`), corrected for the titles the overlay changed."""
        titles = self["Title"]
        if not titles:
            return cat.eligible(ords, country, maturity)
        key = (country, maturity)
        allowed = self._allowed.get(key)
        if allowed is None:
            allowed = cat.allowed(country, maturity).copy()
            for o, t in titles.items():
                allowed[o] = t is not None and country in t.countries and t.maturity <= maturity
            self._allowed[key] = allowed
        return ords[allowed[ords]]
