"""Marrow: a Python platform for read-heavy content services.

``marrow.store`` is the embedded, compressed, in-memory object store everything else reads from.
"""

from marrow.errors import (
    BlobError,
    BlobVersionError,
    ConfigError,
    CorruptBlobError,
    CycleError,
    IncompatibleSchemaError,
    MarrowError,
    NotFoundError,
    RecordError,
    RefreshError,
    RequestError,
    SchemaError,
    StateMismatchError,
)

__version__ = "0.1.0"

__all__ = [
    "BlobError",
    "BlobVersionError",
    "ConfigError",
    "CorruptBlobError",
    "CycleError",
    "IncompatibleSchemaError",
    "MarrowError",
    "NotFoundError",
    "RecordError",
    "RefreshError",
    "RequestError",
    "SchemaError",
    "StateMismatchError",
    "__version__",
]
