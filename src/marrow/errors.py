"""The one exception tree of Marrow.

    MarrowError
    ├── SchemaError                 a schema is malformed, or a record does not fit it
    │   └── IncompatibleSchemaError a schema change that existing data cannot follow
    ├── RecordError                 a record cannot be written (bad value, duplicate primary key)
    ├── BlobError                   a blob cannot be used; the state in memory is left as it was
    │   ├── CorruptBlobError        truncated, checksum mismatch, malformed header
    │   ├── BlobVersionError        written in a format version this code does not read
    │   └── StateMismatchError      a delta made for another state than the one in memory
    ├── CycleError                  a producer cycle failed; nothing was published or announced
    ├── RefreshError                a consumer could not reach a version; it keeps the one it has
    ├── NotFoundError               a type, field or index that does not exist
    ├── SettingsError               a configuration value is missing or wrong; names the setting
    └── ImpressionError             the impression history service cannot take or answer something
        ├── EventError              an impression event is invalid (batches report a reason per event)
        ├── BufferFullError         the ingest buffer is full; nothing was taken; retry after N seconds
        └── StoreUnavailableError   the impression store cannot be reached; ingest refuses, reads
                                    serve from the cache and say so

Every message says what was wrong and, where it helps, what to do about it.
"""

from __future__ import annotations


class MarrowError(Exception):
    """Root of every error Marrow raises on purpose."""


class SchemaError(MarrowError):
    """A schema is malformed, or a value does not fit the schema."""


class IncompatibleSchemaError(SchemaError):
    """A schema change that data written with the old schema cannot follow."""


class RecordError(MarrowError):
    """A record cannot be written as given."""


class BlobError(MarrowError):
    """A blob cannot be applied. The state in memory is left untouched."""


class CorruptBlobError(BlobError):
    """A blob is truncated, fails its checksum, or has a malformed header."""


class BlobVersionError(BlobError):
    """A blob was written in a format version this code does not read."""


class StateMismatchError(BlobError):
    """A delta applies to another state than the one in memory."""


class CycleError(MarrowError):
    """A producer cycle failed (validation, integrity check, publishing); it was rolled back."""


class RefreshError(MarrowError):
    """A consumer could not move to a version; it keeps serving the version it has."""


class NotFoundError(MarrowError, KeyError):
    """A type, field or index that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SettingsError(MarrowError):
    """A configuration value is missing or wrong. The message names the setting and what it accepts."""


class ImpressionError(MarrowError):
    """The impression history service cannot take or answer something."""


class EventError(ImpressionError):
    """An impression event is invalid. The message says which field and why."""


class _RetryLater(ImpressionError):
    """A refusal the caller should retry: ``retry_after`` is the number of seconds to wait."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class BufferFullError(_RetryLater):
    """The ingest buffer is full: the whole batch was refused (nothing taken); retry after
    ``retry_after`` seconds. Events are idempotent by their dedup key, so resending is safe."""


class StoreUnavailableError(_RetryLater):
    """The impression store cannot be reached. Ingest refuses new batches (``retry_after`` says when
    to try again); reads are served from the cache and say so, or raise this when nothing is cached."""
