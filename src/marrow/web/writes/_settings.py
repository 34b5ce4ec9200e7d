"""How ``marrow serve-writes`` runs: section ``[writes]`` of a TOML file, then ``MARROW_WRITES_*``
variables, then the command's options, read with :func:`marrow.settings.load_settings`.

    [writes]                               # marrow.toml
    root = "var/content"
    tokens = ["s3cret"]

    MARROW_WRITES_TOKENS=s3cret,other      # comma-separated; the environment overrides the file
"""

from __future__ import annotations

import importlib
from typing import Annotated

import msgspec

from marrow.errors import ConfigError
from marrow.store import Schema

__all__ = ["WritesSettings"]


class WritesSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The write service's settings. Invariants (:meth:`check`, which the loader runs): at least one
    token, none blank; ``schema`` names ``module:attribute``."""

    #: the namespace's directory: its write log, writer lease, blobs and announcements
    root: str
    #: ``module:attribute`` naming the namespace's classes (one class, or a list of them)
    schema: str = "marrow.records:TYPES"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8791
    #: bearer tokens the API accepts; it refuses to start without one
    tokens: tuple[str, ...] = ()
    #: the writer folds the log into a new version this often (seconds), or after this many entries
    fold_interval: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    fold_entries: Annotated[int, msgspec.Meta(ge=1)] = 10_000

    def check(self) -> None:
        if not self.tokens or any(not t.strip() for t in self.tokens):
            raise ConfigError(
                "the write service needs at least one non-blank token: "
                "set tokens = [...] in [writes] or MARROW_WRITES_TOKENS (comma-separated)"
            )
        module, _, attribute = self.schema.partition(":")
        if not module or not attribute:
            raise ConfigError(
                f"schema is 'module:attribute' (e.g. marrow.records:TYPES), not {self.schema!r}"
            )

    def classes(self) -> Schema:
        """The namespace's schema, from the classes ``schema`` names."""
        module, _, attribute = self.schema.partition(":")
        try:
            value = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as e:
            raise ConfigError(
                f"cannot load the schema classes {self.schema!r} (setting writes.schema): {e}"
            ) from None
        return Schema.from_classes(*(value if isinstance(value, list | tuple) else [value]))
