"""What an ingestion run reports: per event, the offset it was written at or the errors, per field,
that kept it from being written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marrow.cms.events import ContentEvent
from marrow.errors import IngestError

__all__ = ["FieldError", "Outcome", "Report"]


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one document: ``field`` is a path into it (``blocks[3].title``)."""

    kind: str
    id: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        return f"{self.kind} {self.id}, {self.field}: {self.message}"


@dataclass
class Outcome:
    """What became of one event in one channel.

    ``offset`` is the write's offset when the event's record was written (or deleted); ``None`` with
    ``errors`` when it failed; ``None`` without errors when there was nothing to write (a kind with
    no render-ready record, such as a person) or the event was ``skipped`` (already applied, or
    superseded by a later event of the same document).
    """

    event: ContentEvent
    channel: str
    offset: int | None = None
    errors: list[FieldError] = field(default_factory=list)
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Report:
    """The outcomes of one run, and the offset of each channel's bulk update (absent: no write)."""

    outcomes: list[Outcome] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[FieldError]:
        return [e for o in self.outcomes for e in o.errors]

    def outcome(self, channel: str, kind: str, id: int) -> Outcome | None:
        """The last outcome of document ``(kind, id)`` in ``channel``, if this run had one."""
        found = None
        for o in self.outcomes:
            if o.channel == channel and (o.event.kind, o.event.id) == (kind, id):
                found = o
        return found

    def raise_for_errors(self) -> None:
        """Raise IngestError listing every error, if there were any."""
        errors = self.errors
        if errors:
            shown = "; ".join(str(e) for e in errors[:10])
            more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
            raise IngestError(
                f"{len(errors)} ingestion error(s), nothing written for them: {shown}{more}", errors
            )
