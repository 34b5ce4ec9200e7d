"""Marrow: a Python platform for read-heavy content services.

``marrow.store`` is the embedded, compressed, in-memory object store everything else reads from.
"""

from marrow.errors import (
    AuthError,
    BlobError,
    BlobVersionError,
    ConfigError,
    ConflictError,
    ContentError,
    CorruptBlobError,
    CycleError,
    EventError,
    FencedError,
    IncompatibleSchemaError,
    IngestError,
    LeaseError,
    LogError,
    LogTruncatedError,
    MarrowError,
    NotFoundError,
    ReadTimeoutError,
    RecordError,
    RefreshError,
    RequestError,
    RevisionConflictError,
    SchemaError,
    StateMismatchError,
    WriteError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BlobError",
    "BlobVersionError",
    "ConfigError",
    "ConflictError",
    "ContentError",
    "CorruptBlobError",
    "CycleError",
    "EventError",
    "FencedError",
    "IncompatibleSchemaError",
    "IngestError",
    "LeaseError",
    "LogError",
    "LogTruncatedError",
    "MarrowError",
    "NotFoundError",
    "ReadTimeoutError",
    "RecordError",
    "RefreshError",
    "RequestError",
    "RevisionConflictError",
    "SchemaError",
    "StateMismatchError",
    "WriteError",
    "__version__",
]
