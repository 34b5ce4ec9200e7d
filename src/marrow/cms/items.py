"""What the CMS store hands out: an item (a document and its state), a save's result, a revision, an
audit entry; and the check that turns a mapping into a document of a kind."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from marrow.cms.events import ContentEvent
from marrow.cms.model import KINDS, Document
from marrow.errors import ContentError

__all__ = ["AuditEntry", "Item", "RevisionInfo", "Saved", "Version", "as_document", "check_kind"]


@dataclass(frozen=True)
class Item:
    """A document as the CMS holds it: its latest revision, and which revision is published."""

    kind: str
    id: int
    revision: int
    published_revision: int | None
    updated_at: float
    updated_by: str
    slug: str | None
    label: str
    doc: Document | None = None  # None in listings, which do not decode documents

    @property
    def status(self) -> str:
        """``draft`` (never published or unpublished), ``published``, or ``changed`` (published,
        with a newer draft)."""
        if self.published_revision is None:
            return "draft"
        return "published" if self.published_revision == self.revision else "changed"


@dataclass(frozen=True)
class Saved:
    """What a save, publish or unpublish did: the item as it is now, and the event it emitted."""

    item: Item
    event: ContentEvent


class Version(NamedTuple):
    """One revision of a document, as ingestion pulls it."""

    revision: int
    doc: Document
    published_at: float | None  # when the document was first published (kept across unpublishing)


@dataclass(frozen=True)
class RevisionInfo:
    revision: int
    author: str
    at: float


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    editor: str
    action: str
    kind: str | None
    id: int | None
    revision: int | None
    detail: dict[str, Any]


def check_kind(kind: str) -> type[Document]:
    cls = KINDS.get(kind)
    if cls is None:
        raise ContentError(f"unknown content kind {kind!r}; the kinds are {', '.join(KINDS)}")
    return cls


def as_document(kind: str, doc: Document | dict[str, Any]) -> Document:
    """``doc`` as the struct of ``kind``, converted from a mapping (e.g. decoded JSON) if need be."""
    cls = check_kind(kind)
    if isinstance(doc, cls):
        return doc
    if not isinstance(doc, dict):
        raise ContentError(
            f"a {kind} document must be a {cls.__name__} or a mapping, not {type(doc).__name__}"
        )
    try:
        return msgspec.convert(doc, cls)
    except msgspec.ValidationError as e:
        raise ContentError(f"the {kind} document is malformed: {e}") from None
