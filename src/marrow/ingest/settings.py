"""Ingestion's settings (section ``[ingest]``, environment ``MARROW_INGEST_*``); see
:func:`marrow.settings.load_settings`."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["IngestSettings"]


class IngestSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    #: where the CDN serves origin assets from; image URLs add the size each device needs
    cdn_base: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/]+(/\S*)?$")] = "https://cdn.marrow.test"
    #: events per batch (one bulk update per channel per batch)
    batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    #: a failed batch is retried after this many seconds, doubling per attempt up to ``max_delay``
    first_delay: Annotated[float, msgspec.Meta(gt=0)] = 0.25
    max_delay: Annotated[float, msgspec.Meta(gt=0)] = 30.0
