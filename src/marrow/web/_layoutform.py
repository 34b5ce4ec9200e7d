"""The layout form of the editor: an HTML form's fields ↔ a :class:`~marrow.cms.PageLayout`.

Sections are numbered rows: ``section-2-kind``, ``section-2-label``, ``section-2-collection``,
``section-2-genre``, ``section-2-limit``, ``section-2-remove`` to drop it, and ``section-2-move`` =
``up`` to move it one place up. A number that is not a number is a field error here, before anything is
saved; whether the layout makes sense (a collection section without its collection, an unknown kind)
is for ingestion to judge, as for every document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marrow.cms.model import PageLayout, SectionSpec

__all__ = ["LayoutForm", "blank_section", "form_of", "parse_form"]

_MAX_SECTIONS = 100
_FIELDS = ("kind", "label", "collection", "genre", "limit")


@dataclass
class LayoutForm:
    """What the form shows: the fields as text and errors by field path (``sections[2].limit``)."""

    page: str = "home"
    device: str = "web"
    sections: list[dict[str, str]] = field(default_factory=list)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def as_dict(self) -> dict[str, Any]:
        return {"page": self.page, "device": self.device, "sections": self.sections, "errors": self.errors}


def blank_section(kind: str = "trending") -> dict[str, str]:
    return {"kind": kind, "label": "", "collection": "", "genre": "", "limit": "20"}


def form_of(layout: PageLayout) -> LayoutForm:
    """The form showing ``layout``."""
    rows = [
        {
            "kind": s.kind,
            "label": s.label,
            "collection": "" if s.collection is None else str(s.collection),
            "genre": s.genre or "",
            "limit": str(s.limit),
        }
        for s in layout.sections
    ]
    return LayoutForm(layout.page, layout.device, rows)


def parse_form(data: Mapping[str, str]) -> tuple[LayoutForm, PageLayout | None]:
    """The form as submitted, and the layout it describes (None when a field is malformed)."""
    form = LayoutForm(data.get("page", "").strip(), data.get("device", "").strip())
    for i in range(_MAX_SECTIONS):
        if f"section-{i}-kind" not in data:
            break
        if data.get(f"section-{i}-remove"):
            continue
        row = {f: data.get(f"section-{i}-{f}", "").strip() for f in _FIELDS}
        if data.get(f"section-{i}-move") == "up" and form.sections:
            form.sections.insert(len(form.sections) - 1, row)
        else:
            form.sections.append(row)
    specs = []
    for i, row in enumerate(form.sections):
        numbers: dict[str, int | None] = {}
        for name in ("collection", "limit"):
            text = row[name]
            if text and not text.isdigit():
                form.error(f"sections[{i}].{name}", f"a whole number, not {text!r}")
            numbers[name] = int(text) if text.isdigit() else None
        specs.append(
            SectionSpec(
                kind=row["kind"],
                label=row["label"],
                collection=numbers["collection"],
                genre=row["genre"] or None,
                limit=numbers["limit"] if numbers["limit"] is not None else 20,
            )
        )
    if form.errors:
        return form, None
    return form, PageLayout(page=form.page, device=form.device, sections=specs)
