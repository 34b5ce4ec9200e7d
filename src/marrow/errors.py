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
    ├── ConfigError                 a configuration value (file, environment) is missing or wrong
    └── RequestError                a request (its parameters, a cursor) is malformed

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


class ConfigError(MarrowError, ValueError):
    """A configuration file or value is missing or wrong; the message names where and what is allowed."""


class RequestError(MarrowError, ValueError):
    """A request is malformed: a parameter out of range, a cursor this service did not issue."""
