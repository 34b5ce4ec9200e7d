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
    ├── NotFoundError               a type, field or index that does not exist (also a CMS document)
    ├── WriteError                  a bulk update was refused; none of it was applied
    │   └── ConflictError           a conditional update's expectations did not hold (names the keys)
    ├── LogError                    the write log cannot be read or appended (down, too few replicas)
    │   ├── FencedError             this writer was deposed: another writer has appended since
    │   └── LogTruncatedError       the entries asked for were folded into a version and truncated
    ├── LeaseError                  the writer lease cannot be acquired, or was lost
    ├── ReadTimeoutError            a strong read did not catch up with the offset in time
    ├── ConfigError                 a configuration value (file, environment) is missing or wrong
    ├── RequestError                a request (its parameters, a cursor) is malformed
    ├── ContentError                a CMS document cannot be saved as given (shape, slug taken)
    │   └── RevisionConflictError   a save or publish based on a stale revision (names both)
    ├── AuthError                   sign-in failed, or a session is missing, expired or forged
    ├── EventBusError               an event could not be handed to the event bus (it stays queued)
    ├── IngestError                 content failed ingestion; lists every error per field;
    │                               nothing was written
    └── ImpressionError             the impression history service cannot take or answer something
        ├── InvalidEventError       an impression event is invalid (batches report a reason per event)
        ├── BufferFullError         the ingest buffer is full; nothing was taken; retry after N seconds
        └── StoreUnavailableError   the impression store cannot be reached; ingest refuses, reads
                                    serve from the cache and say so

Every message says what was wrong and, where it helps, what to do about it.
"""

from __future__ import annotations

from typing import Any


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


class WriteError(MarrowError):
    """A bulk update was refused as a whole; none of it was applied."""


class ConflictError(WriteError):
    """A conditional bulk update's expectations did not hold. ``conflicts`` names each failed one as
    ``(type, key, what was expected, what was found)``."""

    def __init__(self, message: str, conflicts: list[tuple[str, object, str, str]]):
        super().__init__(message)
        self.conflicts = conflicts


class LogError(MarrowError):
    """The write log cannot be read or appended. An append that raises this may or may not have
    been stored: retry it with the same request id, which applies it at most once."""


class FencedError(LogError):
    """This writer was deposed: another writer took the lease and appended; it must stop writing."""


class LogTruncatedError(LogError):
    """The entries asked for were folded into a version and removed from the log: load that version.
    ``first`` is the first offset the log still holds."""

    def __init__(self, message: str, first: int):
        super().__init__(message)
        self.first = first


class LeaseError(MarrowError):
    """The writer lease cannot be acquired (another writer holds it) or was lost."""


class ReadTimeoutError(MarrowError):
    """A strong read could not catch up with the offset it waits for within its timeout."""


class ConfigError(MarrowError, ValueError):
    """A configuration file or value is missing or wrong; the message names where and what is allowed."""


class RequestError(MarrowError, ValueError):
    """A request is malformed: a parameter out of range, a cursor this service did not issue."""


class ContentError(MarrowError):
    """A CMS document cannot be saved as given: its shape is wrong, or its slug is taken."""


class RevisionConflictError(ContentError):
    """A save or publish was based on a revision that is no longer the latest.

    ``base`` is the revision the editor started from, ``current`` the one the CMS holds now.
    """

    def __init__(self, message: str, base: int | None, current: int | None):
        super().__init__(message)
        self.base = base
        self.current = current


class AuthError(MarrowError):
    """Sign-in failed, or a request's session is missing, expired or forged."""


class EventBusError(MarrowError):
    """An event could not be handed to the event bus; it stays in the CMS outbox and is retried."""


class IngestError(MarrowError):
    """Content failed ingestion: ``errors`` lists each problem with the field it is in. Nothing was
    written for the content that failed."""

    def __init__(self, message: str, errors: list[Any]):  # list[marrow.ingest.FieldError]
        super().__init__(message)
        self.errors = errors


class ImpressionError(MarrowError):
    """The impression history service cannot take or answer something."""


class InvalidEventError(ImpressionError):
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
