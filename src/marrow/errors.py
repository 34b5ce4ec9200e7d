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
    ├── ConfigError                 a setting is missing or malformed; nothing was started
    ├── ContentError                a CMS document cannot be saved as given (shape, slug taken)
    │   └── ConflictError           a save or publish based on a stale revision (names both)
    ├── AuthError                   sign-in failed, or a session is missing, expired or forged
    ├── EventError                  an event could not be handed to the event bus (it stays queued)
    └── IngestError                 content failed ingestion; lists every error per field;
                                    nothing was written

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


class ConfigError(MarrowError):
    """A setting is missing or malformed (the message names it and says what it should be)."""


class ContentError(MarrowError):
    """A CMS document cannot be saved as given: its shape is wrong, or its slug is taken."""


class ConflictError(ContentError):
    """A save or publish was based on a revision that is no longer the latest.

    ``base`` is the revision the editor started from, ``current`` the one the CMS holds now.
    """

    def __init__(self, message: str, base: int | None, current: int | None):
        super().__init__(message)
        self.base = base
        self.current = current


class AuthError(MarrowError):
    """Sign-in failed, or a request's session is missing, expired or forged."""


class EventError(MarrowError):
    """An event could not be handed to the event bus; it stays in the CMS outbox and is retried."""


class IngestError(MarrowError):
    """Content failed ingestion: ``errors`` lists each problem with the field it is in. Nothing was
    written for the content that failed."""

    def __init__(self, message: str, errors: list[Any]):  # list[marrow.ingest.FieldError]
        super().__init__(message)
        self.errors = errors
