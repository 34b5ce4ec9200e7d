"""Where blobs and announcements live: the small protocols a producer and its consumers share.

A producer *publishes* each version's snapshot, delta and reverse delta to a blob store, then
*announces* the version. Consumers *watch* the announcement and *retrieve* the blobs that take them
there. Each protocol has one to three methods; implementations exist in memory (for tests and one
process), on the filesystem (the embedded default) and on existing engines (NATS JetStream, S3).

Invariants every implementation keeps:

* publishing is atomic: a retriever sees a blob whole or not at all, never half-written;
* a blob, once published under a :class:`BlobRef`, never changes (republishing the same bytes is a
  no-op; other bytes under the same ref are an error);
* an announcement names a version whose blobs were all published before it.

An announcement may also *carry* the small delta that leads to the version it names (an announcer
that can: :class:`DeltaCarrier`, on NATS), so that a consumer one version behind applies it straight
from the announcement without a round trip to the blob store; its watcher hands the delta over
through :class:`CarriedDeltas`. The delta is published like any other blob all the same: a consumer
further behind, or one that starts later, fetches it.

What subscribers of an :class:`AnnouncementWatcher` hear, in every implementation:

* every *change* of the announced version that the watcher sees, in the order announced — newer or
  **older**: announcing an earlier version is how a rollback reaches consumers, and a consumer
  moves to it over reverse deltas, so that every consumer ends on the announced version;
* never the version announced when it subscribed, and never one version twice in a row; a watcher
  that polls may miss versions announced faster than it looks (the last is always heard), a watcher
  that is pushed each one hears all of them, but none reorders them;
* after :meth:`AnnouncementWatcher.close`, no callback is started and ``subscribe`` raises.

Who owns the memory of a retrieved blob: the caller. A store may hand out an ``mmap``
(:class:`~marrow.store.filesystem.MappedFile`); a state loaded from it keeps it alive through its
arrays, and it is unmapped when the last of them is gone (see :mod:`marrow.store.consumer`).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

Kind = Literal["snapshot", "delta", "reverse"]
Buffer = bytes | bytearray | memoryview | mmap.mmap  #: blob bytes; a filesystem store may hand out an mmap


@dataclass(frozen=True, order=True)
class BlobRef:
    """Names one blob: a snapshot *of* ``version``, or a (reverse) delta *from* ``origin`` to ``version``."""

    kind: Kind
    version: int
    origin: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("snapshot", "delta", "reverse"):
            raise ValueError(f"blob kind must be snapshot, delta or reverse, not {self.kind!r}")
        if (self.kind == "snapshot") != (self.origin is None):
            raise ValueError("a snapshot has no origin; a delta or reverse delta has one")

    @property
    def name(self) -> str:
        """A file- and key-safe name: ``snapshot-7``, ``delta-6-7``, ``reverse-7-6``."""
        if self.kind == "snapshot":
            return f"snapshot-{self.version}"
        return f"{self.kind}-{self.origin}-{self.version}"

    @classmethod
    def parse(cls, name: str) -> BlobRef:
        """The inverse of :attr:`name`; raises ValueError for anything else."""
        parts = name.split("-")
        try:
            if parts[0] == "snapshot" and len(parts) == 2:
                return cls("snapshot", int(parts[1]))
            if parts[0] in ("delta", "reverse") and len(parts) == 3:
                return cls(parts[0], int(parts[2]), int(parts[1]))  # type: ignore[arg-type]
        except ValueError:
            pass
        raise ValueError(f"{name!r} does not name a blob (snapshot-V, delta-A-B or reverse-B-A)")


def as_bytes_view(data: Buffer) -> memoryview:
    """``data`` as a flat view of unsigned bytes, without a copy (a blob is bytes, whatever its source)."""
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class Publisher(Protocol):
    def publish(self, ref: BlobRef, data: Buffer) -> None:
        """Store a blob atomically. Raises MarrowError when the store is unreachable."""


class BlobRetriever(Protocol):
    def retrieve_snapshot(self, version: int) -> tuple[BlobRef, Buffer] | None:
        """The newest snapshot at or before ``version``, or None."""

    def retrieve_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        """The delta that starts at version ``origin``, or None.

        ``toward`` is the version the caller is heading for: when the delta ``origin → toward`` exists
        it is the answer, and a store may fetch it by name without listing its blobs."""

    def retrieve_reverse_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        """The reverse delta that starts at version ``origin`` (and leads back), or None; ``toward`` as
        for :meth:`retrieve_delta`."""


class BlobStore(Publisher, BlobRetriever, Protocol):
    """A publisher and retriever in one, which also lists and removes blobs (for cleanup)."""

    def refs(self) -> list[BlobRef]:
        """Every blob stored, sorted."""

    def remove(self, ref: BlobRef) -> None:
        """Delete one blob; removing a missing blob is not an error."""


class Announcer(Protocol):
    def announce(self, version: int) -> None:
        """Make ``version`` the one consumers should be on."""


class AnnouncementWatcher(Protocol):
    def latest(self) -> int | None:
        """The announced version, or None before the first announcement."""

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(version)`` on each change of the announced version (possibly from another
        thread; see the module docstring); returns a function that unsubscribes."""

    def close(self) -> None:
        """Stop watching and release what the watcher holds (threads, connections); idempotent."""


@runtime_checkable
class DeltaCarrier(Protocol):
    """An announcer whose announcement can carry the delta that leads to the announced version."""

    def announce_delta(self, ref: BlobRef, data: Buffer) -> None:
        """Announce ``ref.version``, carrying the delta ``ref`` (already published) when it is small
        enough for an announcement; otherwise announce the version alone."""


@runtime_checkable
class CarriedDeltas(Protocol):
    """A watcher that keeps the deltas the last few announcements carried."""

    def carried_delta(self, origin: int, toward: int) -> tuple[BlobRef, Buffer] | None:
        """The carried delta from ``origin`` to a version no later than ``toward``, or None."""


def candidates(refs: list[BlobRef], kind: str, version: int) -> list[BlobRef]:
    """The refs a retriever may answer with, best first, for a store that holds ``refs``.

    * ``snapshot``: snapshots at or before ``version``, newest first;
    * ``delta`` / ``reverse``: those that start at ``version``; when several do (a producer whose
      cycle was rolled back may leave ``delta-5-6`` beside ``delta-5-7``), the one reaching the
      highest version first.
    """
    if kind == "snapshot":
        found = [ref for ref in refs if ref.kind == "snapshot" and ref.version <= version]
    else:
        found = [ref for ref in refs if ref.kind == kind and ref.origin == version]
    return sorted(found, key=lambda ref: ref.version, reverse=True)


class ListingRetriever:
    """The three ``retrieve_*`` methods of a store that can list its blobs and read one.

    Subclasses provide :meth:`refs` and :meth:`_read`; candidates are tried best first, so a blob
    removed between listing and reading is skipped.
    """

    #: Try the snapshot of the very version by name before listing: where a miss costs little (a
    #: local file), which spares a shared consumer's every switch a listing of the directory.
    snapshot_by_name = False

    def refs(self) -> list[BlobRef]:
        raise NotImplementedError

    def _read(self, ref: BlobRef) -> Buffer | None:
        """The blob's bytes, or None when it is gone."""
        raise NotImplementedError

    def retrieve_snapshot(self, version: int) -> tuple[BlobRef, Buffer] | None:
        """The newest snapshot at or before ``version``, or None."""
        return self._first("snapshot", version)

    def retrieve_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        """The delta from ``origin`` (to ``toward`` if published, else the highest version), or None."""
        return self._first("delta", origin, toward)

    def retrieve_reverse_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        """The reverse delta from ``origin`` back (to ``toward`` if published), or None."""
        return self._first("reverse", origin, toward)

    def _first(self, kind: str, version: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        exact = None  # by name first: no listing
        if kind == "snapshot" and self.snapshot_by_name:
            exact = BlobRef(kind, version)  # type: ignore[arg-type]
        elif kind != "snapshot" and toward is not None:
            exact = BlobRef(kind, toward, version)  # type: ignore[arg-type]
        if exact is not None:
            data = self._read(exact)
            if data is not None:
                return exact, data
        for ref in candidates(self.refs(), kind, version):
            data = self._read(ref)
            if data is not None:
                return ref, data
        return None
