"""Blobs and announcements on NATS JetStream: an Object Store bucket and one Key-Value key.

* :class:`NatsBlobStore` keeps each blob as one object named :attr:`BlobRef.name` in an Object Store
  bucket (created if missing). The object store writes an object's chunks first and its metadata
  last, so a reader sees a blob whole or not at all.
* :class:`NatsAnnouncer` and :class:`NatsAnnouncementWatcher` (from
  :mod:`marrow.store.nats_announcements`) keep the announced version under one Key-Value key.

Each object owns one connection (:mod:`marrow.store.nats_connection`); call ``close()``, or use ``with``.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import json
import logging
import mmap
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import nats.errors
import nats.js.errors
from nats.js.api import Header, ObjectInfo, ObjectMetaOptions
from nats.js.object_store import ObjectStore

from marrow.errors import BlobError, CorruptBlobError
from marrow.store.blobstore import BlobRef, Buffer
from marrow.store.filesystem import MappedFile
from marrow.store.nats_announcements import NatsAnnouncementWatcher, NatsAnnouncer
from marrow.store.nats_connection import (
    DEFAULT_SERVERS,
    MIN_TRANSFER_RATE,
    NETWORK_ERRORS,
    Connection,
    Owner,
    Servers,
)

__all__ = ["NatsAnnouncementWatcher", "NatsAnnouncer", "NatsBlobStore"]

log = logging.getLogger(__name__)
_CHUNK = 128 * 1024  # bytes per message of an object, as other object store clients write them
_WRONG_LAST_SEQUENCE = 10071  # JetStream's error code when an expected last sequence does not hold


class NatsBlobStore(Owner):
    """A :class:`~marrow.store.blobstore.BlobStore` in a JetStream Object Store bucket.

    Lifecycle: the constructor connects and opens ``bucket`` (creating it with ``replicas`` if it is
    missing); ``close()`` releases the connection. Safe to share between threads.

    Invariants: a blob is one object named ``ref.name``, written atomically and readable by any
    object store client. Republishing the same bytes is a no-op and other bytes under a stored ref
    raise BlobError; of two publishers racing on one ref, across processes, exactly one wins.
    Retrieval picks from a cached listing of the bucket and lists afresh when the cache has no exact
    answer, so what other processes publish is found. Each request waits at most ``timeout``
    seconds, a blob's transfer at most ``timeout + size / MIN_TRANSFER_RATE``; digests are checked.

    Retrieved blobs are ``bytes``; with ``spool`` (a local directory), each is written there chunk by
    chunk as it arrives and handed out as a read-only mapping of an unnamed file (a
    :class:`~marrow.store.filesystem.MappedFile`), so the heap never holds a whole snapshot: a
    consumer that reloads keeps one copy of its data, not two (see ``docs/lifecycle.md``).
    """

    def __init__(
        self,
        servers: Servers = DEFAULT_SERVERS,
        bucket: str = "marrow-blobs",
        replicas: int = 1,
        timeout: float = 5.0,
        spool: str | os.PathLike[str] | None = None,
    ) -> None:
        self.bucket, self._stream = bucket, f"OBJ_{bucket}"
        self.spool = Path(spool) if spool is not None else None
        self._lock = threading.Lock()
        self._listing: list[BlobRef] | None = None
        self._conn = Connection(servers, timeout, "blobs")
        try:
            self._direct = self._conn.run(self._open(replicas), f"open object store bucket {bucket!r}")
        except BaseException:
            self._conn.close()
            raise
        self._store = ObjectStore(bucket, self._stream, self._conn.js)

    async def _open(self, replicas: int) -> bool:
        """Create the bucket if missing; whether its stream answers direct gets (fast, any replica)."""
        try:
            return bool((await self._conn.js.stream_info(self._stream)).config.allow_direct)
        except nats.js.errors.NotFoundError:
            await self._conn.js.create_object_store(self.bucket, replicas=replicas)
            return True

    def publish(self, ref: BlobRef, data: Buffer) -> None:
        """Store ``data`` under ``ref`` atomically; see the class invariants for republishing."""
        payload = data if isinstance(data, bytes) else bytes(data)
        deadline = self._conn.timeout + len(payload) / MIN_TRANSFER_RATE
        self._conn.run(self._put(ref.name, payload), f"publish {ref.name}", deadline)
        with self._lock:
            if self._listing is not None and ref not in self._listing:
                bisect.insort(self._listing, ref)

    async def _put(self, name: str, payload: bytes) -> None:
        # Chunks first, then the metadata that makes them an object, as every object store client
        # does; the metadata is published only if its subject is as we read it (nothing, or a removed
        # object's), so of two racing publishers exactly one wins.
        js, meta = self._conn.js, f"$O.{self.bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"
        sha256 = hashlib.sha256(payload).digest()
        try:
            last = await js.get_last_msg(self._stream, meta)
        except nats.js.errors.NotFoundError:
            expected = 0
        else:
            info = ObjectInfo.from_response(json.loads(last.data or b"{}"))
            if not info.deleted:
                return self._check_same(info, len(payload), sha256)
            expected = last.seq or 0
        nuid = uuid.uuid4().hex
        chunks = f"$O.{self.bucket}.C.{nuid}"
        info = ObjectInfo(
            name=name,
            bucket=self.bucket,
            nuid=nuid,
            size=len(payload),
            chunks=-(-len(payload) // _CHUNK),
            digest=f"SHA-256={base64.urlsafe_b64encode(sha256).decode()}",
            mtime=datetime.now(UTC).isoformat(),
            options=ObjectMetaOptions(max_chunk_size=_CHUNK),
        )
        try:
            for start in range(0, len(payload), _CHUNK):
                await js.publish(chunks, payload[start : start + _CHUNK])
            headers = {Header.ROLLUP.value: "sub", Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(expected)}
            await js.publish(meta, json.dumps(info.as_dict()).encode(), headers=headers)
        except nats.js.errors.BadRequestError as err:
            await js.purge_stream(self._stream, subject=chunks)
            if err.err_code != _WRONG_LAST_SEQUENCE:
                raise
            self._check_same(await self._store.get_info(name), len(payload), sha256)  # the other one won
        except BaseException:
            with contextlib.suppress(*NETWORK_ERRORS):
                await js.purge_stream(self._stream, subject=chunks)
            raise

    def _check_same(self, info: ObjectInfo, size: int, sha256: bytes) -> None:
        if info.size != size or _digest(info) != sha256:
            raise BlobError(
                f"blob {info.name} in bucket {self.bucket!r} is already published with other bytes, and "
                "a published blob never changes; publish under a new version, or remove the old blob first"
            )

    def retrieve_snapshot(self, version: int) -> tuple[BlobRef, Buffer] | None:
        """The newest snapshot at or before ``version``, or None."""
        return self._retrieve(lambda r: r.kind == "snapshot" and r.version <= version, version)

    def retrieve_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        """The delta from ``origin`` (to ``toward`` if published, else the newest), or None."""
        found = self._by_name(BlobRef("delta", toward, origin)) if toward is not None else None
        return found or self._retrieve(lambda r: r.kind == "delta" and r.origin == origin)

    def retrieve_reverse_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        """The reverse delta from ``origin`` back (to ``toward`` if published, else the newest)."""
        found = self._by_name(BlobRef("reverse", toward, origin)) if toward is not None else None
        return found or self._retrieve(lambda r: r.kind == "reverse" and r.origin == origin)

    def _by_name(self, ref: BlobRef) -> tuple[BlobRef, Buffer] | None:
        """One blob by its exact name, without listing the bucket (one look-up, then its chunks)."""
        info = self._conn.run(self._info(ref.name), f"look up {ref.name}")
        if info is None:
            return None
        deadline = self._conn.timeout + (info.size or 0) / MIN_TRANSFER_RATE
        data = self._conn.run(self._read(info), f"retrieve {ref.name}", deadline)
        return (ref, data) if data is not None else None

    def _retrieve(
        self, wanted: Callable[[BlobRef], bool], exact: int | None = None
    ) -> tuple[BlobRef, Buffer] | None:
        with self._lock:
            ref = max(filter(wanted, self._listing or []), default=None)
        for _ in range(2):
            if ref is None or (exact is not None and ref.version != exact):  # the cache may be stale
                ref = max(filter(wanted, self.refs()), default=None)
            if ref is None:
                return None
            info = self._conn.run(self._info(ref.name), f"look up {ref.name}")
            if info is not None:
                deadline = self._conn.timeout + (info.size or 0) / MIN_TRANSFER_RATE
                data = self._conn.run(self._read(info), f"retrieve {ref.name}", deadline)
                if data is not None:
                    return ref, data
            ref = None  # removed since it was listed
        return None

    async def _info(self, name: str) -> ObjectInfo | None:
        try:
            return await self._store.get_info(name)
        except nats.js.errors.ObjectNotFoundError:
            return None

    async def _read(self, info: ObjectInfo) -> Buffer | None:
        # Chunk by chunk with (direct) gets: nats-py's own get pushes them through a flow-controlled
        # consumer and joins them with `bytes +=`, ten times slower for a 20 MB blob. With a spool
        # directory each chunk goes to a file as it arrives and the blob is handed out mapped: the
        # heap never holds it whole (a snapshot reload then costs no second copy of the data).
        subject, seq = f"$O.{self.bucket}.C.{info.nuid}", 1
        sink = _Spooled(self.spool) if self.spool is not None else _Joined()
        digest, size = hashlib.sha256(), 0
        try:
            for _ in range(info.chunks or 0):
                try:
                    msg = await self._conn.js.get_msg(
                        self._stream, seq, subject, direct=self._direct, next=True
                    )
                except nats.js.errors.NotFoundError:
                    return None  # removed while it was read
                chunk = msg.data or b""
                digest.update(chunk)
                size += len(chunk)
                sink.write(chunk)
                seq = (msg.seq or seq) + 1
            if size != info.size or digest.digest() != _digest(info):
                raise CorruptBlobError(
                    f"{info.name} in bucket {self.bucket!r} fails its SHA-256 digest; republish it"
                )
            return sink.result()
        finally:
            sink.close()

    def refs(self) -> list[BlobRef]:
        """Every blob in the bucket, sorted, listed afresh (objects not named like blobs are skipped)."""
        listing = []
        for name in self._conn.run(self._names(), f"list bucket {self.bucket!r}"):
            try:
                listing.append(BlobRef.parse(name))
            except ValueError:
                log.debug("bucket %r: skipping %r, which does not name a blob", self.bucket, name)
        listing.sort()
        with self._lock:
            self._listing = listing
        return list(listing)

    async def _names(self) -> list[str]:
        try:
            return [info.name for info in await self._store.list(ignore_deletes=True) if info.name]
        except nats.js.errors.NotFoundError:  # nats-py's answer for an empty bucket
            return []

    def remove(self, ref: BlobRef) -> None:
        """Delete one blob; removing a missing blob is not an error."""
        self._conn.run(self._delete(ref.name), f"remove {ref.name}")
        with self._lock:
            if self._listing is not None and ref in self._listing:
                self._listing.remove(ref)

    async def _delete(self, name: str) -> None:
        with contextlib.suppress(nats.js.errors.ObjectNotFoundError):
            await self._store.delete(name)


class _Joined:
    """Chunks joined into one ``bytes``."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def result(self) -> Buffer:
        return b"".join(self.chunks)

    def close(self) -> None:
        self.chunks = []


class _Spooled:
    """Chunks written to an unnamed file in ``directory``, handed out mapped (the file is unlinked at
    once; the mapping keeps it until the version that uses it is released)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by close()

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)

    def result(self) -> Buffer:
        self.file.flush()
        if self.file.tell() == 0:
            return b""  # mmap refuses empty files
        return MappedFile(self.file.fileno(), 0, access=mmap.ACCESS_READ)

    def close(self) -> None:
        self.file.close()


def _digest(info: ObjectInfo) -> bytes:
    """The SHA-256 an object store keeps for an object, from ``SHA-256=<base64url>``."""
    kind, _, value = (info.digest or "").partition("=")
    return base64.urlsafe_b64decode(value) if kind.upper() == "SHA-256" else b""
