"""Blob store and announcements kept in the memory of one process: for tests and single-process use.

* :class:`InMemoryBlobStore` — a :class:`~marrow.store.blobstore.BlobStore` in a dict;
* :class:`InMemoryAnnouncer` — an :class:`~marrow.store.blobstore.Announcer` and
  :class:`~marrow.store.blobstore.AnnouncementWatcher` in one object, which calls its subscribers
  *synchronously*, on the thread that announces, before :meth:`~InMemoryAnnouncer.announce` returns.

::

    blobs, announcements = InMemoryBlobStore(), InMemoryAnnouncer()
    blobs.publish(BlobRef("snapshot", 1), snapshot)
    announcements.announce(1)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from marrow.errors import BlobError
from marrow.store._watch import Subscribers
from marrow.store.blobstore import BlobRef, Buffer, ListingRetriever, as_bytes_view

__all__ = ["InMemoryAnnouncer", "InMemoryBlobStore"]


class InMemoryBlobStore(ListingRetriever):
    """A :class:`~marrow.store.blobstore.BlobStore` held in a dict; thread-safe.

    Lifecycle: create, publish, retrieve, remove; nothing outlives the object. Blobs are copied to
    ``bytes`` on publish, so the caller may reuse its buffer, and retrieved as those same ``bytes``.

    Invariants: a ref, once published, keeps its bytes — republishing equal bytes is a no-op and
    other bytes raise :class:`~marrow.errors.BlobError` — until it is removed; after a remove the
    ref may be published again with any bytes.
    """

    def __init__(self) -> None:
        self._blobs: dict[BlobRef, bytes] = {}
        self._lock = threading.Lock()

    def publish(self, ref: BlobRef, data: Buffer) -> None:
        """Store ``data`` under ``ref``; raises BlobError when ``ref`` holds other bytes."""
        blob = bytes(as_bytes_view(data))
        with self._lock:
            existing = self._blobs.setdefault(ref, blob)
        if existing is not blob and existing != blob:
            raise BlobError(
                f"blob {ref.name} is already published with other bytes ({len(existing)} vs {len(blob)}"
                " bytes); a published blob never changes — publish under a new version"
            )

    def refs(self) -> list[BlobRef]:
        """Every blob stored, sorted."""
        with self._lock:
            return sorted(self._blobs)

    def remove(self, ref: BlobRef) -> None:
        """Forget one blob; removing a missing blob is not an error."""
        with self._lock:
            self._blobs.pop(ref, None)

    def _read(self, ref: BlobRef) -> Buffer | None:
        with self._lock:
            return self._blobs.get(ref)


class InMemoryAnnouncer:
    """An announcer and a watcher in one object, for producers and consumers in one process.

    Lifecycle: create, then :meth:`announce` and :meth:`subscribe` in any order, from any thread.
    Subscribers are called *synchronously*: on the announcing thread, in subscription order, before
    :meth:`announce` returns — so a test that announces can assert on what its consumer did at once.
    A slow subscriber therefore slows the announcer; a failing one is logged and skipped.

    Invariants: :meth:`latest` is the version announced last (even if older than an earlier one);
    subscribers receive versions as :class:`Subscribers` promises — each change, rollbacks included.
    :meth:`close` forgets the subscribers and refuses new ones; announcing still works.
    """

    def __init__(self) -> None:
        self._latest: int | None = None
        self._lock = threading.Lock()
        # one announcement at a time, so that latest() ends on the version delivered last;
        # reentrant so that a subscriber may announce
        self._announcing = threading.RLock()
        self._subscribers = Subscribers()
        self._closed = False

    def announce(self, version: int) -> None:
        """Make ``version`` the announced one and tell the subscribers, before returning."""
        with self._announcing:
            with self._lock:
                self._latest = version
            self._subscribers.deliver(version)

    def latest(self) -> int | None:
        """The version announced last, or None before the first announcement."""
        with self._lock:
            return self._latest

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(version)`` for each later change of the announced version; returns the
        unsubscribe."""
        if self._closed:
            raise RuntimeError("this announcer's watcher side is closed; create a new one")
        return self._subscribers.add(callback)

    def close(self) -> None:
        """Stop calling subscribers; idempotent."""
        self._closed = True
        self._subscribers = Subscribers(self.latest())
