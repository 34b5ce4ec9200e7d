"""Marrow: a Python platform for read-heavy content services.

``marrow.store`` is the embedded, compressed, in-memory object store everything else reads from.
"""

from marrow.errors import (
    BlobError,
    BlobVersionError,
    BufferFullError,
    CorruptBlobError,
    CycleError,
    EventError,
    ImpressionError,
    IncompatibleSchemaError,
    MarrowError,
    NotFoundError,
    RecordError,
    RefreshError,
    SchemaError,
    SettingsError,
    StateMismatchError,
    StoreUnavailableError,
)

__version__ = "0.1.0"

__all__ = [
    "BlobError",
    "BlobVersionError",
    "BufferFullError",
    "CorruptBlobError",
    "CycleError",
    "EventError",
    "ImpressionError",
    "IncompatibleSchemaError",
    "MarrowError",
    "NotFoundError",
    "RecordError",
    "RefreshError",
    "SchemaError",
    "SettingsError",
    "StateMismatchError",
    "StoreUnavailableError",
    "__version__",
]
