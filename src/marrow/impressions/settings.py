"""The impression history service's settings: one typed struct, read from TOML and the environment,
validated at start-up.

    [impressions]                     # in a TOML file
    store = "sqlite:var/impressions.db"
    dedup_key = ["profile", "title", "page", "section", "position", "timestamp_bucket"]
    min_visible_share = 0.5
    min_visible_ms = 1000

Read with :func:`marrow.settings.load_settings` (section ``impressions``): every field can be
overridden by ``MARROW_IMPRESSIONS_<NAME>`` in the environment (lists comma-separated:
``MARROW_IMPRESSIONS_TOKENS=s3cret,other``). A wrong value fails the start with a
:class:`~marrow.errors.ConfigError` that names the setting and says what it accepts; nothing runs on
a half-valid configuration.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from marrow.errors import ConfigError

__all__ = ["DEDUP_FIELDS", "ImpressionSettings"]

#: What a dedup key may be made of: the event's fields, and ``timestamp_bucket`` (the timestamp
#: rounded down to ``dedup_bucket_s``), so that one artwork in one place counts once per bucket.
DEDUP_FIELDS = (
    "profile",
    "title",
    "page",
    "section",
    "position",
    "device",
    "timestamp",
    "timestamp_bucket",
    "scroll",
    "cached_page",
)

_DAY_S = 86_400
Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0.0)]


class ImpressionSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the service can be told. Invariants, checked on construction: the dedup key names
    ``profile``, ``title`` and a time (``timestamp`` or ``timestamp_bucket``), from
    :data:`DEDUP_FIELDS`, without repeats; ``dedup_bucket_s`` divides a day (so that duplicates always
    fall in the same storage bucket); retention covers the 30-day window."""

    #: where impressions are kept: ``memory``, ``sqlite:PATH`` (the embedded default) or a
    #: ``postgresql://`` connection string
    store: str = "sqlite:var/impressions.db"
    #: the shared cache (the EVCache role), e.g. ``redis://127.0.0.1:6379/0``; none by default
    redis_url: str | None = None
    #: bearer tokens the HTTP API accepts; the API refuses to start without one
    tokens: tuple[str, ...] = ()

    # --- events: validation, dedup and filters ---
    dedup_key: tuple[str, ...] = ("profile", "title", "page", "section", "position", "timestamp_bucket")
    dedup_bucket_s: Positive = 300
    #: filters: an event under either bound is taken but not stored (reported as filtered)
    min_visible_share: Share = 0.5
    min_visible_ms: Annotated[int, msgspec.Meta(ge=0)] = 1000
    devices: tuple[str, ...] = ("tv", "web", "mobile")
    #: events stamped further ahead of the service's clock than this are rejected
    max_clock_skew_s: Annotated[int, msgspec.Meta(ge=0)] = 300
    retention_days: Annotated[int, msgspec.Meta(ge=30, le=3650)] = 30

    # --- ingest ---
    buffer_events: Positive = 50_000
    batch_max: Positive = 1_000
    #: how long the flusher gathers events nobody waits for into one write (ms)
    flush_interval_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 20
    flush_events: Positive = 5_000
    ack_timeout_s: Seconds = 5.0

    # --- queries and cache ---
    #: timestamps kept in a title's recent sequence, newest first
    recent: Annotated[int, msgspec.Meta(ge=0, le=100)] = 5
    cache_entries: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    cache_max_age_s: Seconds = 60.0
    shared_cache_max_age_s: Seconds = 600.0
    #: share of profiles whose answers come from the cache (the rest read the store)
    dial_up: Share = 1.0
    #: share of profiles whose cached answer is also read from the store and compared
    shadow_share: Share = 0.0
    #: mismatches kept, newest first, for the status page
    shadow_examples: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 20

    def __post_init__(self) -> None:
        unknown = [f for f in self.dedup_key if f not in DEDUP_FIELDS]
        if unknown:
            raise ConfigError(
                f"dedup_key names {', '.join(map(repr, unknown))}, which events do not have; "
                f"choose from {', '.join(DEDUP_FIELDS)}"
            )
        if len(set(self.dedup_key)) != len(self.dedup_key):
            raise ConfigError(f"dedup_key names a field twice: {list(self.dedup_key)}")
        missing = [f for f in ("profile", "title") if f not in self.dedup_key]
        if missing:
            raise ConfigError(
                f"dedup_key must contain {' and '.join(missing)}: histories are kept per profile and title"
            )
        if not {"timestamp", "timestamp_bucket"} & set(self.dedup_key):
            raise ConfigError(
                "dedup_key must contain timestamp or timestamp_bucket; without a time, every later showing "
                "of a title would count as a duplicate of the first"
            )
        if _DAY_S % self.dedup_bucket_s:
            raise ConfigError(
                f"dedup_bucket_s must divide a day (86400 s), not {self.dedup_bucket_s}: "
                "duplicates must fall in the same day bucket of the store"
            )
        if not self.devices or any(not d.strip() for d in self.devices):
            raise ConfigError(f"devices must be a list of device names, not {list(self.devices)}")
        if self.batch_max > self.buffer_events:
            raise ConfigError(
                f"batch_max ({self.batch_max}) is larger than buffer_events ({self.buffer_events}): "
                "such a batch could never be taken"
            )
        kind = self.store.split(":", 1)[0]
        if self.store != "memory" and kind not in ("sqlite", "postgresql", "postgres"):
            raise ConfigError(f"store must be memory, sqlite:PATH or postgresql://..., not {self.store!r}")
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"redis_url must be a redis:// URL, not {self.redis_url!r}")

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain values, with the tokens hidden."""
        out = msgspec.structs.asdict(self)
        out["tokens"] = ["…"] * len(self.tokens)
        return out


def field_message(e: msgspec.ValidationError) -> str:
    """msgspec says "... - at `$.min_visible_share`"; name the field (or setting) first."""
    message = str(e)
    if " - at `$." in message:
        what, where = message.rsplit(" - at `$.", 1)
        return f"{where.rstrip('`')}: {what}"
    return message
