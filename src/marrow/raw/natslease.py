"""The writer lease on NATS: a key in a JetStream Key-Value bucket whose entries expire.

Why NATS KV and not PostgreSQL advisory locks: the scale-out write log is already a JetStream stream,
so the lease lives on the same servers (no second service to run and fail), its epoch comes for free
(the KV revision, a stream sequence, which only grows), and it is replicated like the log. An
advisory lock is held by a database session: it is released when the connection drops, which a
partitioned writer notices late or not at all, and it carries no fencing token of its own.

Protocol: ``acquire`` creates the key (it succeeds only if the key does not exist); the revision it
gets is the **epoch**. A daemon thread renews the entry every ``ttl / 3`` seconds with a
compare-and-set on the revision; the bucket's ``ttl`` expires an entry nobody renews, so a writer
that dies (or is cut off) loses the lease within ``ttl`` and a standby's ``acquire`` then succeeds.
``held()`` turns False as soon as a renewal fails or ``ttl`` passes without one — before anyone else
can hold it. ``release`` deletes the key (expecting our revision), so a standby takes over at once.
Fencing does not rely on the lease alone: the new writer appends a fence entry to the log, after
which a deposed writer's appends are refused (see :mod:`marrow.raw.natslog`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats.js.errors
from nats.js.kv import KeyValue

from marrow.errors import LeaseError, MarrowError
from marrow.store.nats_connection import DEFAULT_SERVERS, Connection, Servers

__all__ = ["NatsLease"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class NatsLease:
    """A :class:`~marrow.raw.lease.Lease` on the key ``writer`` of the KV bucket ``raw-lease-<name>``."""

    def __init__(
        self,
        name: str,
        servers: Servers = DEFAULT_SERVERS,
        *,
        ttl: float = 3.0,
        replicas: int = 1,
        timeout: float = 5.0,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"a lease ttl is positive, not {ttl}")
        self.bucket, self.key, self.ttl, self.replicas = f"raw-lease-{name}", "writer", ttl, replicas
        self.owner = uuid.uuid4().hex
        self.epoch = 0
        self._revision = 0
        self._renewed = 0.0
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn = Connection(servers, timeout, f"lease-{name}")
        try:
            self._kv = self._run(self._open(), f"open the lease bucket {self.bucket}")
        except BaseException:
            self._conn.close()
            raise

    def _run(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        try:
            return self._conn.run(coro, what)
        except MarrowError as e:
            raise LeaseError(f"{e} (the writer lease lives in NATS KV bucket {self.bucket})") from e

    async def _open(self) -> KeyValue:
        js = self._conn.js
        try:
            return await js.key_value(self.bucket)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(
                bucket=self.bucket, ttl=self.ttl, history=1, replicas=self.replicas
            )

    async def _create(self) -> int | None:
        try:
            return int(await self._kv.create(self.key, self.owner.encode()))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None  # held by someone

    async def _update(self) -> int | None:
        try:
            return int(await self._kv.update(self.key, self.owner.encode(), last=self._revision))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None  # expired and taken, or deleted

    def acquire(self, timeout: float | None = None) -> int:
        """Create the key when it is free (retrying until ``timeout``); returns the epoch."""
        if self.held():
            raise LeaseError(f"this object already holds the lease {self.bucket}")
        deadline = None if timeout is None else time.monotonic() + timeout
        while (revision := self._run(self._create(), f"take {self.bucket}")) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise LeaseError(
                    f"another writer holds the lease {self.bucket} (waited {timeout:g} s); it expires "
                    f"{self.ttl:g} s after its holder stops renewing it"
                )
            time.sleep(min(self.ttl / 10, 0.2))
        self._revision = self.epoch = revision
        self._renewed = time.monotonic()
        self._lost.clear()
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name=f"marrow-{self.bucket}", daemon=True)
        self._thread.start()
        return self.epoch

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                revision = self._run(self._update(), f"renew {self.bucket}")
            except LeaseError as e:
                if time.monotonic() - self._renewed < self.ttl:
                    log.warning("cannot renew the writer lease %s yet: %s", self.bucket, e)
                    continue
                revision = None
            if revision is None:
                log.warning("lost the writer lease %s", self.bucket)
                self._lost.set()
                return
            self._revision, self._renewed = revision, time.monotonic()

    def held(self) -> bool:
        return (
            self.epoch > 0
            and not self._lost.is_set()
            and not self._stop.is_set()
            and time.monotonic() - self._renewed < self.ttl
        )

    def release(self) -> None:
        """Delete the key (if still ours) so a standby takes over at once; idempotent."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        if not self._lost.is_set():
            try:
                self._run(self._kv.delete(self.key, last=self._revision), f"release {self.bucket}")
            except LeaseError as e:
                log.info("releasing %s: %s (it expires on its own)", self.bucket, e)
        self.epoch = 0

    def close(self) -> None:
        self.release()
        self._conn.close()
