"""Marrow: a Python platform for read-heavy content services.

``marrow.store`` is the embedded, compressed, in-memory object store everything else reads from.
"""

from marrow.errors import (
    BlobError,
    BlobVersionError,
    ConfigError,
    ConflictError,
    CorruptBlobError,
    CycleError,
    FencedError,
    IncompatibleSchemaError,
    LeaseError,
    LogError,
    LogTruncatedError,
    MarrowError,
    NotFoundError,
    ReadTimeoutError,
    RecordError,
    RefreshError,
    RequestError,
    SchemaError,
    StateMismatchError,
    WriteError,
)

__version__ = "0.1.0"

__all__ = [
    "BlobError",
    "BlobVersionError",
    "ConfigError",
    "ConflictError",
    "CorruptBlobError",
    "CycleError",
    "FencedError",
    "IncompatibleSchemaError",
    "LeaseError",
    "LogError",
    "LogTruncatedError",
    "MarrowError",
    "NotFoundError",
    "ReadTimeoutError",
    "RecordError",
    "RefreshError",
    "RequestError",
    "SchemaError",
    "StateMismatchError",
    "WriteError",
    "__version__",
]
