"""A committed cycle: the new state of every type, and the blobs that lead to it and back.

:meth:`WriteState.prepare <marrow.store.write.WriteState.prepare>` makes one; its snapshot, delta and
reverse delta are encoded only when asked for. State tags are drawn here: a delta is refused unless it
starts from the tag of the state in memory.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from marrow.store._typedata import TypeData, TypeDelta
from marrow.store.blob import Blob, write_blob
from marrow.store.schema import Schema


def new_tag() -> str:
    """A random state tag: deltas are refused unless they start from the tag in memory."""
    return secrets.token_hex(8)


@dataclass(eq=False)
class Cycle:
    """The result of one committed cycle: the new state and the blobs that lead to it."""

    schema: Schema
    previous_schema: Schema | None
    origin: str | None  # the previous state's tag (None for the first state)
    destination: str
    version: int | None
    previous_version: int | None
    previous_meta: dict[str, Any]
    state: dict[str, TypeData]
    forward: dict[str, TypeDelta]
    backward: dict[str, TypeDelta]
    removed_types: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return (
            bool(self.removed_types)
            or any(not d.is_empty for d in self.forward.values())
            or (self.previous_schema is not None and self.previous_schema != self.schema)
        )

    def snapshot(self) -> bytes:
        return write_blob(
            Blob(
                "snapshot",
                self.schema,
                self.destination,
                None,
                self.version,
                types=self.state,
                meta=self.meta,
            )
        )

    def delta(self) -> bytes | None:
        """The delta from the previous state, or None for the first state."""
        if self.origin is None:
            return None
        return write_blob(
            Blob(
                "delta",
                self.schema,
                self.destination,
                self.origin,
                self.version,
                deltas=self.forward,
                removed_types=self.removed_types,
                meta=self.meta,
            )
        )

    def reverse_delta(self) -> bytes | None:
        """The delta back to the previous state, or None for the first state."""
        if self.origin is None:
            return None
        assert self.previous_schema is not None
        added_back = [n for n in self.forward if n not in self.previous_schema]
        return write_blob(
            Blob(
                "reverse",
                self.previous_schema,
                self.origin,
                self.destination,
                self.previous_version,
                deltas={n: d for n, d in self.backward.items() if n in self.previous_schema},
                removed_types=added_back,
                meta=self.previous_meta,
            )
        )
