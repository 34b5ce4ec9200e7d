"""Announcements on NATS JetStream: the version under one key of a Key-Value bucket.

:class:`NatsAnnouncer` puts the announced version, in decimal ASCII, under the key;
:class:`NatsAnnouncementWatcher` follows it with a KV watch, pushed by the server. An announcement may
carry the delta that leads to its version (``max_carried`` bytes at most, 256 KiB by default): the
value is then the version, a newline, the delta's name (``delta-6-7``), a newline and the delta's
bytes. A consumer one version behind applies it from the watch message, with no round trip to the
object store (the fetch was most of a propagation's time). The bucket keeps the last 64 values, so
carried deltas hold up to 64 × ``max_carried`` bytes on the server.

Each object owns one connection (:mod:`marrow.store.nats_connection`); a watcher also owns a thread
that runs the subscribers' callbacks, so that a slow callback cannot stall the connection and a
callback may call the watcher back. Call ``close()``, or use ``with``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from marrow.errors import BlobError, CorruptBlobError, MarrowError
from marrow.store.blob import read_header
from marrow.store.blobstore import BlobRef, Buffer, as_bytes_view
from marrow.store.nats_connection import DEFAULT_SERVERS, NETWORK_ERRORS, Connection, Owner, Servers

__all__ = ["NatsAnnouncementWatcher", "NatsAnnouncer"]

log = logging.getLogger(__name__)
_CARRIED_HELD = 4  # carried deltas a watcher keeps, the newest announcements'


async def _open_kv(conn: Connection, bucket: str, replicas: int) -> KeyValue:
    try:
        return await conn.js.key_value(bucket)
    except nats.js.errors.BucketNotFoundError:
        # A watch delivers from the stream, and a value the stream has dropped is never delivered:
        # keep 64 (the most a KV bucket may) so that a server late to push still pushes each one.
        return await conn.js.create_key_value(bucket=bucket, history=64, replicas=replicas)


class NatsAnnouncer(Owner):
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
        self._conn = Connection(servers, timeout, "announcer")
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


class NatsAnnouncementWatcher(Owner):
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
            self._conn = Connection(servers, timeout, "watcher")
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
            with contextlib.suppress(*NETWORK_ERRORS):
                await old.stop()

    async def _restart_watch(self) -> None:
        # The server may have lost the watch's consumer (a restart), which nats-py notices only after
        # missing heartbeats for many seconds. The new watch repeats the current version: no subscriber
        # hears it twice, since each hears only versions newer than its last.
        while True:
            try:
                return await self._start_watch()
            except NETWORK_ERRORS as err:
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
