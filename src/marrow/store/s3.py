"""Blobs and announcements in an S3 bucket, through the ``obstore`` package (``pip install marrow[s3]``).

* :class:`S3BlobStore` — one object per blob, keyed ``<prefix>/<BlobRef.name>``;
* :class:`S3Announcer` — writes the object ``<prefix>/announced`` (the same JSON as the filesystem's
  ``announced.json``);
* :class:`S3AnnouncementWatcher` — polls that object and tells subscribers, from a daemon thread, of
  each new version (see :class:`~marrow.store._watch.PollingWatcher`).

Publishing is one PUT (never multipart), which S3 applies atomically: a reader sees a blob whole or
not at all. The PUT carries ``If-None-Match: *``, so a blob is never overwritten, even by a racing
publisher: equal bytes are then a no-op and other bytes a :class:`~marrow.errors.BlobError`. A
server must honour that header for the guarantee (AWS S3 does since 2024); one that ignores it lets
the last publisher win. Every failure to reach the server is a BlobError naming the operation.

Keyword options go to :class:`obstore.store.S3Store` unchanged (``endpoint``, ``region``,
``access_key_id``, ``client_options={"allow_http": True}``, ``retry_config``, …); without them,
obstore reads the ``AWS_*`` environment variables.

Tested against moto's S3 server (``moto.server.ThreadedMotoServer``, moto 5.2.5, obstore 0.12.1) on a
loopback port, path-style requests over plain HTTP (``tests/store/test_s3.py``): the blob store
contract, conditional create, announcements and polling. Not yet run against AWS itself, MinIO or
another S3-compatible server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marrow.errors import BlobError
from marrow.store._watch import PollingWatcher, encode_announcement
from marrow.store.blobstore import BlobRef, Buffer, ListingRetriever, as_bytes_view

if TYPE_CHECKING:
    from obstore.store import S3Store

__all__ = ["ANNOUNCEMENT_KEY", "S3AnnouncementWatcher", "S3Announcer", "S3BlobStore"]

ANNOUNCEMENT_KEY = "announced"  #: the announcement's key under the prefix


def _connect(bucket: str, prefix: str, options: dict[str, Any]) -> S3Store:
    try:
        from obstore.exceptions import BaseError
        from obstore.store import S3Store
    except ImportError as error:  # an optional dependency: the message says how to get it
        raise BlobError("the S3 blob store needs obstore: pip install 'marrow[s3]'") from error
    try:
        return S3Store(bucket, prefix=prefix.strip("/") or None, **options)
    except (BaseError, ValueError, TypeError) as error:
        raise BlobError(f"cannot configure the S3 store for bucket {bucket!r}: {error}") from error


def _failure(action: str, where: str, error: Exception) -> BlobError:
    return BlobError(f"cannot {action} in {where}: {error}; check that the S3 server is reachable")


class S3BlobStore(ListingRetriever):
    """A :class:`~marrow.store.blobstore.BlobStore` in one S3 bucket, under ``prefix``.

    Lifecycle: the bucket must exist; nothing is contacted until the first call. The object is
    thread-safe and holds no thread or connection that needs closing. Retrieved blobs are
    ``memoryview`` objects over obstore's buffer (no copy).

    Invariants: as the protocol says — atomic, immutable blobs; republishing equal bytes is a no-op,
    other bytes raise :class:`~marrow.errors.BlobError`; any other failure is a BlobError; a blob
    removed between listing and reading is skipped. Objects under the prefix whose names do not parse
    as a :class:`BlobRef` (the announcement, anything else) are ignored.
    """

    def __init__(self, bucket: str, prefix: str = "", **obstore_options: Any) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self._store = _connect(bucket, prefix, obstore_options)
        self._where = f"s3://{bucket}/{self.prefix}"

    def __repr__(self) -> str:
        return f"S3BlobStore({self.bucket!r}, prefix={self.prefix!r})"

    def publish(self, ref: BlobRef, data: Buffer) -> None:
        """Store ``data`` as the object ``ref.name`` in one conditional PUT."""
        from obstore.exceptions import AlreadyExistsError, BaseError

        view = as_bytes_view(data)
        try:
            self._store.put(ref.name, view, mode="create", use_multipart=False)
            return
        except AlreadyExistsError:
            pass
        except (BaseError, OSError) as error:
            raise _failure(f"publish {ref.name}", self._where, error) from error
        existing = self._get(ref)
        if existing is None or existing != view:
            raise BlobError(
                f"blob {ref.name} in {self._where} is already published with other bytes; "
                "a published blob never changes — publish under a new version, or remove it first"
            )

    def _read(self, ref: BlobRef) -> Buffer | None:
        return self._get(ref)

    def _get(self, ref: BlobRef) -> memoryview | None:
        from obstore.exceptions import BaseError

        try:
            return memoryview(self._store.get(ref.name).bytes())
        except FileNotFoundError:
            return None
        except (BaseError, OSError) as error:
            raise _failure(f"read {ref.name}", self._where, error) from error

    def refs(self) -> list[BlobRef]:
        """Every blob under the prefix, sorted (one LIST, paged by obstore)."""
        from obstore.exceptions import BaseError

        found = []
        try:
            for batch in self._store.list():
                for meta in batch:
                    try:
                        found.append(BlobRef.parse(meta["path"]))
                    except ValueError:
                        continue
        except (BaseError, OSError) as error:
            raise _failure("list blobs", self._where, error) from error
        return sorted(found)

    def remove(self, ref: BlobRef) -> None:
        """Delete one blob; removing a missing blob is not an error (S3 DELETE is idempotent)."""
        from obstore.exceptions import BaseError

        try:
            self._store.delete(ref.name)
        except FileNotFoundError:
            pass
        except (BaseError, OSError) as error:
            raise _failure(f"remove {ref.name}", self._where, error) from error


class S3Announcer:
    """An :class:`~marrow.store.blobstore.Announcer` that writes the object ``<prefix>/announced``.

    Each announcement is one PUT that replaces the object whole; readers see the old or the new one.
    Holds no resources. Raises :class:`~marrow.errors.BlobError` when the server cannot be reached.
    """

    def __init__(self, bucket: str, prefix: str = "", **obstore_options: Any) -> None:
        self._store = _connect(bucket, prefix, obstore_options)
        self._where = f"s3://{bucket}/{prefix.strip('/')}"

    def announce(self, version: int) -> None:
        """Make ``version`` the announced one."""
        from obstore.exceptions import BaseError

        data = encode_announcement(version)
        try:
            self._store.put(ANNOUNCEMENT_KEY, data, mode="overwrite", use_multipart=False)
        except (BaseError, OSError) as error:
            raise _failure(f"announce version {version}", self._where, error) from error


class S3AnnouncementWatcher(PollingWatcher):
    """Watches ``<prefix>/announced`` by polling it every ``poll_interval`` seconds (one GET each).

    See :class:`~marrow.store._watch.PollingWatcher` for the lifecycle: :meth:`latest` reads the
    object on each call (BlobError when the server cannot be reached); the first :meth:`subscribe`
    starts the polling thread, which logs an outage once and keeps polling; :meth:`close` stops it.
    """

    def __init__(
        self, bucket: str, prefix: str = "", poll_interval: float = 1.0, **obstore_options: Any
    ) -> None:
        self._store = _connect(bucket, prefix, obstore_options)
        where = f"s3://{bucket}/{prefix.strip('/')}"
        super().__init__(f"{where.rstrip('/')}/{ANNOUNCEMENT_KEY}", poll_interval)

    def read_announcement(self) -> bytes | None:
        """The bytes of the announcement object, or None when there is none."""
        from obstore.exceptions import BaseError

        try:
            return bytes(self._store.get(ANNOUNCEMENT_KEY).bytes())
        except FileNotFoundError:
            return None
        except (BaseError, OSError) as error:
            raise _failure("read the announcement", self._source, error) from error
