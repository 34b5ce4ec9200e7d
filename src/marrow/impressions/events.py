"""Impression events: what a device reports when a title's artwork was shown to a member.

An :class:`Impression` is validated in two steps. Its *shape* (types, ranges, lengths) is checked by
msgspec when it is decoded or converted; what depends on the service's settings (known devices, the
timestamp against the clock and the retention) by :func:`check`. A batch is decoded event by event
(:func:`decode_batch`), so one bad event is refused with its reason and the others go on.

Timestamps are milliseconds since the Unix epoch (UTC), as devices report them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import msgspec

from marrow.impressions.settings import ImpressionSettings, field_message

__all__ = [
    "Batch",
    "Impression",
    "Refusal",
    "Scroll",
    "check",
    "decode_batch",
    "filtered",
    "to_impression",
    "to_impressions",
]

DAY_MS = 86_400_000

#: How the artwork came into view: it was there when the page appeared (``none``), or the member
#: scrolled the page down or up, or a row left or right.
Scroll = Literal["none", "down", "up", "left", "right"]

_Id = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Impression(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One artwork shown to a member (DESIGN.md §5)."""

    profile: _Id
    title: _Id
    page: _Name  # the page type: "home", "browse", "search", ...
    section: _Name  # the row or block of the page
    position: Annotated[int, msgspec.Meta(ge=0, le=10_000)]  # 0-based place in the row
    device: _Name
    timestamp: Annotated[int, msgspec.Meta(ge=0, le=2**53)]  # ms since the epoch, when it came into view
    visible_share: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]  # share of the artwork on screen
    visible_ms: Annotated[int, msgspec.Meta(ge=0, le=DAY_MS)]  # how long it stayed in view
    scroll: Scroll = "none"
    cached_page: bool = False  # the page came from a cache, not a new request


class Batch(msgspec.Struct, forbid_unknown_fields=True):
    """A request body: ``{"events": [...]}``. Each event stays raw until it is decoded on its own."""

    events: list[msgspec.Raw]


class Refusal(msgspec.Struct, frozen=True):
    """Why the event at ``index`` of its batch was not taken (rejected) or not stored (filtered)."""

    index: int
    reason: str


def check(event: Impression, settings: ImpressionSettings, now_ms: int) -> str | None:
    """What is wrong with a well-formed event under ``settings`` at ``now_ms``, or None."""
    if event.device not in settings.devices:
        return f"device {event.device!r} is not one of {', '.join(settings.devices)} (setting devices)"
    ahead = event.timestamp - now_ms
    if ahead > settings.max_clock_skew_s * 1000:
        return (
            f"timestamp {event.timestamp} is {ahead / 1000:.0f} s ahead of the service's clock; "
            "timestamps are milliseconds since the epoch (UTC)"
        )
    if event.timestamp < now_ms - settings.retention_days * DAY_MS:
        return f"timestamp {event.timestamp} is older than the retention of {settings.retention_days} days"
    return None


def filtered(event: Impression, settings: ImpressionSettings) -> str | None:
    """Why a valid event is not kept (too little of it seen, too briefly), or None."""
    if event.visible_share < settings.min_visible_share:
        return f"visible_share {event.visible_share} is under min_visible_share {settings.min_visible_share}"
    if event.visible_ms < settings.min_visible_ms:
        return f"visible_ms {event.visible_ms} is under min_visible_ms {settings.min_visible_ms}"
    return None


_decoder = msgspec.json.Decoder(Impression)


def decode_batch(body: bytes) -> list[Impression | str]:
    """The events of a JSON batch body, each decoded on its own: an :class:`Impression`, or the reason
    it cannot be one. Raises :class:`msgspec.DecodeError` when the body itself is not a batch."""
    batch = msgspec.json.decode(body, type=Batch)
    out: list[Impression | str] = []
    for raw in batch.events:
        try:
            out.append(_decoder.decode(raw))
        except msgspec.ValidationError as e:
            out.append(field_message(e))
    return out


def to_impression(value: Impression | Mapping[str, Any]) -> Impression | str:
    """An event given to the Python API (an :class:`Impression` or a mapping of its fields), validated
    as strictly as one decoded from JSON; or the reason it is not valid."""
    try:
        if isinstance(value, Impression):
            # a Struct's constructor checks no constraints: convert its fields to check them
            return msgspec.convert(msgspec.structs.asdict(value), Impression)
        if isinstance(value, Mapping):
            return msgspec.convert(value, Impression)
    except msgspec.ValidationError as e:
        return field_message(e)
    return f"an event is an Impression or a mapping of its fields, not {type(value).__name__}"


def to_impressions(values: Iterable[Impression | Mapping[str, Any]]) -> list[Impression | str]:
    return [to_impression(v) for v in values]
