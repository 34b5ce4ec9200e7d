"""Blobs and announcements on NATS JetStream: an Object Store bucket and one Key-Value key.

* :class:`NatsBlobStore` keeps each blob as one object named :attr:`BlobRef.name` in an Object Store
  bucket (created if missing). The object store writes an object's chunks first and its metadata
  last, so a reader sees a blob whole or not at all.
* :class:`NatsAnnouncer` puts the announced version, in decimal ASCII, under one key of a Key-Value
  bucket; :class:`NatsAnnouncementWatcher` follows that key with a KV watch, pushed by the server.
  An announcement may carry the delta that leads to its version (``max_carried`` bytes at most,
  256 KiB by default): the value is then the version, a newline, the delta's name (``delta-6-7``), a
  newline and the delta's bytes. A consumer one version behind applies it from the watch message,
  with no round trip to the object store (the fetch was most of a propagation's time). The bucket
  keeps the last 64 values, so carried deltas hold up to 64 × ``max_carried`` bytes on the server.

Threading model: nats-py is asyncio-only and Marrow's protocols are synchronous. Each object owns
one NATS connection on an event loop in a daemon thread of its own; a public method hands a coroutine
to that loop and waits for it with a deadline, so a server that is down or silent gives a
:class:`~marrow.errors.BlobError` naming the server and the operation, never a hang. Nothing is
buffered while the connection is down (a failed announcement is not sent later); the connection
reconnects in the background, for as long as the object lives. A watcher owns a second thread that
runs the subscribers' callbacks, so that a slow callback cannot stall the connection and a callback
may call the watcher back. Call ``close()``, or use ``with``.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import mmap
import os
import queue
import tempfile
import threading
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import Header, ObjectInfo, ObjectMetaOptions
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from marrow.errors import BlobError, CorruptBlobError, MarrowError
from marrow.store.blob import read_header
from marrow.store.blobstore import BlobRef, Buffer, as_bytes_view
from marrow.store.filesystem import MappedFile

__all__ = ["NatsAnnouncementWatcher", "NatsAnnouncer", "NatsBlobStore"]

log = logging.getLogger(__name__)
T = TypeVar("T")

Servers = str | Sequence[str]  #: one server URL, or several of one cluster
DEFAULT_SERVERS = "nats://127.0.0.1:4222"
#: The slowest transfer a blob may make before it counts as a hang: publishing or retrieving a blob
#: of ``size`` bytes may take ``timeout + size / MIN_TRANSFER_RATE`` seconds.
MIN_TRANSFER_RATE = 1 << 20
_NETWORK_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError)
_CHUNK = 128 * 1024  # bytes per message of an object, as other object store clients write them
_WRONG_LAST_SEQUENCE = 10071  # JetStream's error code when an expected last sequence does not hold
_CARRIED_HELD = 4  # carried deltas a watcher keeps, the newest announcements'


class _Connection:
    """One NATS connection, on an event loop in a daemon thread that this object owns.

    Lifecycle: the constructor returns connected, or raises BlobError and leaves no thread behind;
    :meth:`run` may be called from any thread but the loop's own; ``on_reconnect`` coroutines start
    after each reconnection; :meth:`close` drains, stops the loop and joins its thread (idempotent).
    """

    def __init__(self, servers: Servers, timeout: float, role: str) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.where, self.timeout, self.closed = ", ".join(self.servers), timeout, False
        self.on_reconnect: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=f"marrow-nats-{role}", daemon=True)
        self._thread.start()
        self.nc = Client()
        try:
            self.run(self._connect(), "connect", 2 * timeout)  # _connect keeps to `timeout` itself
        except BaseException:
            self._stop()
            raise
        self.js = self.nc.jetstream(timeout=timeout)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:  # cancel what is left (watch pumps, client tasks) so that the loop closes cleanly
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    async def _connect(self) -> None:
        # nats-py retries a refused server for minutes before its first connect gives up; once every
        # server has failed once, give up with the server's own reason.
        failures: list[BaseException] = []
        all_failed = asyncio.Event()
        connecting = True

        async def on_error(err: Exception) -> None:
            if connecting:
                failures.append(err)
                if len(failures) >= len(self.servers):
                    all_failed.set()
            else:  # while reconnecting, one per attempt: disconnection and reconnection say enough
                log.log(
                    logging.WARNING if self.nc.is_connected else logging.DEBUG,
                    "NATS at %s: %r",
                    self.where,
                    err,
                )

        async def on_disconnected() -> None:
            if not self.closed:
                log.warning("lost the connection to NATS at %s; reconnecting", self.where)

        async def on_reconnected() -> None:
            log.warning("reconnected to NATS at %s", self.where)
            for hook in self.on_reconnect:
                self.spawn(hook())

        connect = asyncio.ensure_future(
            self.nc.connect(
                self.servers,
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
                connect_timeout=self.timeout,  # type: ignore[arg-type]
                max_reconnect_attempts=-1,  # a long-lived consumer outlives any outage
                pending_size=0,  # fail at once while disconnected, rather than send late
            )
        )
        give_up = asyncio.ensure_future(all_failed.wait())
        await asyncio.wait({connect, give_up}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        give_up.cancel()
        if connect.done():
            connect.result()
            connecting = False
            return
        connect.cancel()
        with contextlib.suppress(BaseException):
            await connect
        with contextlib.suppress(Exception):
            await self.nc.close()
        reason = repr(failures[-1]) if failures else f"no answer within {self.timeout:g} s"
        raise BlobError(f"cannot reach the NATS server at {self.where}: {reason}; is it running?")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Start ``coro`` on the loop (from the loop's thread); it is cancelled by :meth:`close`."""
        task = self._loop.create_task(coro)
        self._tasks.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._tasks.discard)

    def run(self, coro: Coroutine[Any, Any, T], what: str, deadline: float | None = None) -> T:
        """Run ``coro`` on the loop and return its result within ``deadline`` seconds (default: the
        timeout); a network failure or a missed deadline raises BlobError saying ``what`` failed."""
        if self.closed or threading.current_thread() is self._thread:
            coro.close()
            state = "closed" if self.closed else "called from its own event loop"
            raise BlobError(f"cannot {what}: the connection to NATS at {self.where} is {state}")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        wait = self.timeout if deadline is None else deadline
        try:
            return future.result(wait)
        except concurrent.futures.CancelledError:
            raise BlobError(f"cannot {what}: the connection to NATS at {self.where} was closed") from None
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BlobError(
                f"cannot {what}: NATS at {self.where} did not answer within {wait:g} s; is the server up?"
            ) from None
        except _NETWORK_ERRORS as err:
            if not self.nc.is_connected:
                raise BlobError(
                    f"cannot {what}: no connection to NATS at {self.where} (reconnecting): {err!r}"
                ) from err
            raise BlobError(f"cannot {what} on NATS at {self.where}: {err!r}") from err

    def close(self) -> None:
        """Drain the connection (pending messages go out), then stop the loop; idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._drain(), self._loop).result(self.timeout)
        except (concurrent.futures.TimeoutError, *_NETWORK_ERRORS) as err:
            log.debug("closing the connection to NATS at %s: %r", self.where, err)
        self._stop()

    async def _drain(self) -> None:
        try:
            await self.nc.drain()
        except _NETWORK_ERRORS:
            await self.nc.close()

    def _stop(self) -> None:
        self.closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


class _Owner:
    """What every NATS-backed object shares: its connection, ``close()`` and ``with``."""

    _conn: _Connection

    def close(self) -> None:
        """Release the connection and its thread; idempotent. Later calls on the server raise BlobError."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class NatsBlobStore(_Owner):
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
        self._conn = _Connection(servers, timeout, "blobs")
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
            with contextlib.suppress(*_NETWORK_ERRORS):
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


async def _open_kv(conn: _Connection, bucket: str, replicas: int) -> KeyValue:
    try:
        return await conn.js.key_value(bucket)
    except nats.js.errors.BucketNotFoundError:
        # A watch delivers from the stream, and a value the stream has dropped is never delivered:
        # keep 64 (the most a KV bucket may) so that a server late to push still pushes each one.
        return await conn.js.create_key_value(bucket=bucket, history=64, replicas=replicas)


class NatsAnnouncer(_Owner):
    """An :class:`~marrow.store.blobstore.Announcer` that puts the version under ``key`` in a
    JetStream Key-Value bucket (created if missing), as decimal ASCII, carrying the delta that leads
    to it when that is at most ``max_carried`` bytes (:meth:`announce_delta`; 0 carries none).

    Lifecycle: the constructor connects and opens the bucket; ``close()`` releases the connection.
    Invariant: :meth:`announce` returns once the server has stored the version; when it raises,
    the version is not sent later.
    """

    def __init__(
        self,
        servers: Servers = DEFAULT_SERVERS,
        bucket: str = "marrow-announce",
        key: str = "version",
        replicas: int = 1,
        timeout: float = 5.0,
        max_carried: int = 256 * 1024,
    ) -> None:
        if isinstance(max_carried, bool) or not isinstance(max_carried, int) or max_carried < 0:
            raise ValueError(f"max_carried is a number of bytes >= 0, not {max_carried!r}")
        self.bucket, self.key, self.max_carried = bucket, key, max_carried
        self._conn = _Connection(servers, timeout, "announcer")
        try:
            self._kv = self._conn.run(_open_kv(self._conn, bucket, replicas), f"open KV bucket {bucket!r}")
        except BaseException:
            self._conn.close()
            raise

    def announce(self, version: int) -> None:
        """Make ``version`` the one consumers should be on."""
        _check_version(version)
        self._conn.run(self._kv.put(self.key, str(version).encode()), f"announce version {version}")

    def announce_delta(self, ref: BlobRef, data: Buffer) -> None:
        """Announce ``ref.version``, carrying the delta ``ref`` (published already) if it is small
        enough for one message; otherwise the version alone."""
        if ref.kind != "delta":
            raise ValueError(f"an announcement carries a delta, not {ref.name}")
        _check_version(ref.version)
        view = as_bytes_view(data)
        room = self._conn.nc.max_payload - 1024  # the server's limit on a message, less the headers
        if len(view) > min(self.max_carried, room):
            return self.announce(ref.version)
        value = b"%d\n%s\n" % (ref.version, ref.name.encode()) + bytes(view)
        self._conn.run(self._kv.put(self.key, value), f"announce version {ref.version} with {ref.name}")


def _check_version(version: object) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"an announced version is an int >= 0, not {version!r}")


@dataclass(eq=False)
class _Subscription:
    callback: Callable[[int], None]
    last: int | None  # the version told to this subscriber last, or announced when it subscribed
    revision: int  # the KV revision of that version: only later revisions are news to it
    active: bool = True


_READY, _STOP = object(), object()  # events for the delivery thread, besides versions


class NatsAnnouncementWatcher(_Owner):
    """An :class:`~marrow.store.blobstore.AnnouncementWatcher` on a JetStream Key-Value key.

    Lifecycle: the constructor connects, opens the bucket (creating it if missing) and starts a KV
    watch on ``key``, returning once the watch has caught up with the current value; after a
    reconnection the watch starts again. ``close()`` stops it and both threads; a callback may call it.

    Invariants: callbacks run one at a time on the watcher's delivery thread; each subscriber hears
    every change of the version put after it subscribed, in the order put — rollbacks included —
    never the value current when it subscribed, never one version twice in a row (so subscribe, then
    read :meth:`latest`, and nothing falls between). Order is the KV revision's: a value the watch
    delivers late is never taken for a rollback. A version superseded while the connection was down
    may be skipped; the newest is always heard. A value that is not a version is logged and ignored;
    an exception in a callback is logged and delivery goes on. After :meth:`close`, ``subscribe``
    raises RuntimeError. The deltas the last few announcements carried are kept, checked (a damaged
    one is logged and dropped: the version still counts, and a consumer fetches the delta), for
    :meth:`carried_delta`; each is stored before subscribers hear of its version.
    """

    def __init__(
        self,
        servers: Servers = DEFAULT_SERVERS,
        bucket: str = "marrow-announce",
        key: str = "version",
        replicas: int = 1,
        timeout: float = 5.0,
    ) -> None:
        self.bucket, self.key = bucket, key
        self._lock = threading.Lock()
        self._subscriptions: list[_Subscription] = []
        self._current: tuple[int, int] | None = None  # (version, revision) the watch delivered last
        self._carried: dict[int, tuple[BlobRef, bytes]] = {}  # by origin, the newest last
        self._closed = False
        self._events: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._watch: KeyValue.KeyWatcher | None = None
        self._delivery = threading.Thread(target=self._deliver, name="marrow-nats-announcements", daemon=True)
        self._delivery.start()
        try:
            self._conn = _Connection(servers, timeout, "watcher")
            self._kv = self._conn.run(_open_kv(self._conn, bucket, replicas), f"open KV bucket {bucket!r}")
            self._conn.run(self._start_watch(), f"watch {bucket}.{key}")
            if not self._ready.wait(timeout):
                raise BlobError(f"the watch of {bucket}.{key} on NATS at {self._conn.where} did not start")
        except BaseException:
            self._events.put(_STOP)
            if hasattr(self, "_conn"):
                self._conn.close()
            raise
        self._conn.on_reconnect.append(self._restart_watch)

    async def _start_watch(self) -> None:
        old, self._watch = self._watch, await self._kv.watch(self.key)
        self._conn.spawn(self._pump(self._watch))
        if old is not None:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await old.stop()

    async def _restart_watch(self) -> None:
        # The server may have lost the watch's consumer (a restart), which nats-py notices only after
        # missing heartbeats for many seconds. The new watch repeats the current version: no subscriber
        # hears it twice, since each hears only versions newer than its last.
        while True:
            try:
                return await self._start_watch()
            except _NETWORK_ERRORS as err:
                log.warning("cannot watch %s.%s again yet: %r", self.bucket, self.key, err)
                await asyncio.sleep(1)

    async def _pump(self, watch: KeyValue.KeyWatcher) -> None:
        async for entry in watch:
            if entry is None:
                self._events.put(_READY)
            elif entry.operation is None:  # a put, not a delete or purge
                if (parsed := _parse(entry.value)) is None:
                    log.warning(
                        "ignoring %r under %s.%s: not a version", entry.value[:40], self.bucket, self.key
                    )
                    continue
                version, carried = parsed
                if carried is not None:
                    self._keep(*carried)
                self._events.put((version, entry.revision or 0))

    def _keep(self, ref: BlobRef, data: bytes) -> None:
        try:
            kind, _ = read_header(data)
            if kind != "delta":
                raise CorruptBlobError(f"it is a {kind}")
        except MarrowError as err:
            log.warning("dropping the %s that %s.%s carried: %s", ref.name, self.bucket, self.key, err)
            return
        with self._lock:
            self._carried.pop(ref.origin or 0, None)
            self._carried[ref.origin or 0] = (ref, data)
            while len(self._carried) > _CARRIED_HELD:
                del self._carried[next(iter(self._carried))]

    def carried_delta(self, origin: int, toward: int) -> tuple[BlobRef, Buffer] | None:
        """The delta from ``origin`` that an announcement carried, if it leads no later than ``toward``."""
        with self._lock:
            held = self._carried.get(origin)
        return held if held is not None and held[0].version <= toward else None

    def _deliver(self) -> None:
        while (event := self._events.get()) is not _STOP:
            if event is _READY:
                self._ready.set()
                continue
            assert isinstance(event, tuple)
            version, revision = event
            with self._lock:
                if self._current is None or revision > self._current[1]:
                    self._current = event
                subscriptions = list(self._subscriptions)
            for sub in subscriptions:
                with self._lock:  # a watch started again repeats the current value: not news
                    if not sub.active or revision <= sub.revision or version == sub.last:
                        continue
                    sub.last, sub.revision = version, revision
                try:
                    sub.callback(version)
                except Exception:
                    log.exception("announcement callback %r failed on version %d", sub.callback, version)

    def latest(self) -> int | None:
        """The announced version, read from the server, or None before the first announcement (an
        invalid value gives the last valid version the watch has heard)."""
        read = self._latest()
        return read[0] if read is not None else None

    def _latest(self) -> tuple[int, int] | None:
        """(version, KV revision) read from the server, or None before the first announcement."""
        entry = self._conn.run(self._read(), f"read {self.bucket}.{self.key}")
        if entry is None:
            return None
        value, revision = entry
        if (parsed := _parse(value)) is None:
            log.warning("ignoring %r under %s.%s: not a version", (value or b"")[:40], self.bucket, self.key)
            with self._lock:
                return self._current
        return parsed[0], revision

    async def _read(self) -> tuple[bytes | None, int] | None:
        try:
            entry = await self._kv.get(self.key)
        except nats.js.errors.KeyNotFoundError:
            return None
        return entry.value, entry.revision or 0

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(version)`` on the delivery thread for each newer announcement; returns a
        function that unsubscribes (after it returns, only a call already being made may happen)."""
        if self._closed:
            raise RuntimeError(f"the watcher of {self.bucket}.{self.key} is closed; create a new one")
        try:  # what is announced now, which the watch may not have heard yet
            announced = self._latest()
        except BlobError as err:
            log.debug("subscribing without reading %s.%s: %s", self.bucket, self.key, err)
            announced = None
        with self._lock:
            known = [v for v in (self._current, announced) if v is not None]
            version, revision = max(known, key=lambda known: known[1], default=(None, 0))
            sub = _Subscription(callback, version, revision)
            self._subscriptions.append(sub)

        def unsubscribe() -> None:
            with self._lock:
                sub.active = False
                if sub in self._subscriptions:
                    self._subscriptions.remove(sub)

        return unsubscribe

    def close(self) -> None:
        """Stop the watch, the connection and the delivery thread; idempotent."""
        self._closed = True
        self._conn.close()
        self._events.put(_STOP)
        if threading.current_thread() is not self._delivery:
            self._delivery.join()


def _parse(value: bytes | None) -> tuple[int, tuple[BlobRef, bytes] | None] | None:
    """The version in an announced value and the delta it carries, if any; None when the value is
    not an announcement (decimal ASCII digits, optionally followed by a carried delta's name and
    bytes, each after a newline)."""
    if not value:
        return None
    head, carries, rest = value.partition(b"\n")
    if not head.isdigit():
        return None
    version = int(head)
    if not carries:
        return version, None
    name, named, data = rest.partition(b"\n")
    try:
        ref = BlobRef.parse(name.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not named or ref.kind != "delta" or ref.version != version:
        return None
    return version, (ref, data)
