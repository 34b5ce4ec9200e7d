"""The write log on NATS JetStream: one stream, replicated, for writers and clients on many hosts.

Layout: a stream ``RAW_<name>`` on the subject ``raw.<name>.log`` (file storage, ``replicas``
copies); an entry is one message, its **offset the stream sequence**, its epoch in the header
``Marrow-Epoch``. Truncating purges the stream below an offset; sequences are never reused.

Durability and availability: JetStream acknowledges a message once a majority of the stream's
replicas (``replicas // 2 + 1``: 2 of 3) hold it, so ``append`` returning means a majority has every
entry, and a log of 3 replicas keeps taking writes with one server down. With fewer than a majority
up, an append fails within ``timeout`` with a :class:`~marrow.errors.LogError` that says so (and the
entries may or may not be stored: retry with the same request id).

Fencing: every append carries ``Nats-Expected-Last-Sequence`` — the last offset this object has
appended or read — so once a new writer has appended (its start appends a fence entry), a deposed
writer's next append is refused by the server and raises :class:`~marrow.errors.FencedError`. An
append with an epoch below the highest this object has seen is refused too.

``watch`` follows the subject with a plain subscription (each message wakes the callback), plus a
recheck every second; ``read`` fetches entries by sequence with direct gets, pipelined.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import nats.js.errors
from nats.js.api import StorageType, StreamConfig

from marrow.errors import FencedError, LogError, LogTruncatedError, MarrowError
from marrow.raw.log import Entry, Watchers
from marrow.store.nats_connection import DEFAULT_SERVERS, Connection, Servers

__all__ = ["NatsWriteLog"]


_EPOCH = "Marrow-Epoch"
_WRONG_LAST_SEQUENCE = 10071


class NatsWriteLog:
    """A :class:`~marrow.raw.log.WriteLog` in a JetStream stream; see the module docstring.

    Lifecycle: the constructor connects and opens the stream (creating it with ``replicas`` if
    missing); ``close()`` releases the connection. Safe to share between threads."""

    recheck_interval = 1.0

    def __init__(
        self, name: str, servers: Servers = DEFAULT_SERVERS, *, replicas: int = 1, timeout: float = 5.0
    ) -> None:
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"a log name is letters, digits, '-' and '_', not {name!r}")
        self.name, self.replicas = name, replicas
        self.stream, self.subject = f"RAW_{name}", f"raw.{name}.log"
        self._known = 0  # the last offset appended or read here: what the next append expects
        self._epoch = 0
        self._lock = threading.Lock()
        self._watchers = Watchers()
        self._watcher: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._conn = Connection(servers, timeout, f"log-{name}")
        try:
            self._run(self._open(), f"open the write log stream {self.stream}")
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"NatsWriteLog({self.name!r}, replicas={self.replicas})"

    def _run(self, coro: Any, what: str, deadline: float | None = None) -> Any:
        try:
            return self._conn.run(coro, what, deadline)
        except MarrowError as e:
            if isinstance(e, LogError):
                raise
            raise LogError(
                f"{e}; the log has {self.replicas} replica(s) and needs {self.replicas // 2 + 1} up to take "
                "a write — retry with the same request id"
            ) from e

    async def _open(self) -> None:
        js = self._conn.js
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            config = StreamConfig(
                name=self.stream,
                subjects=[self.subject],
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                allow_direct=True,
            )
            await js.add_stream(config)

    # --- appending -------------------------------------------------------------------------------

    def append(self, payloads: Sequence[bytes], epoch: int) -> int:
        """Publish ``payloads`` in order, each expecting the one before; returns the last offset."""
        with self._lock:
            if epoch < self._epoch:
                raise FencedError(
                    f"a writer of epoch {self._epoch} has appended; this writer (epoch {epoch}) is deposed"
                )
            if not payloads:
                return self._known
            last = self._run(self._append(list(payloads), epoch, self._known), f"append to {self.stream}")
            self._known, self._epoch = last, epoch
            return int(last)

    async def _append(self, payloads: list[bytes], epoch: int, expected: int) -> int:
        js = self._conn.js
        acks = [
            js.publish(
                self.subject,
                payload,
                stream=self.stream,
                headers={"Nats-Expected-Last-Sequence": str(expected + i), _EPOCH: str(epoch)},
            )
            for i, payload in enumerate(payloads)
        ]
        results = await asyncio.gather(*acks, return_exceptions=True)
        for result in results:
            if isinstance(result, nats.js.errors.BadRequestError) and result.err_code == _WRONG_LAST_SEQUENCE:
                raise FencedError(
                    f"another writer has appended to {self.stream} since offset {expected}; "
                    f"this writer (epoch {epoch}) is deposed and must stop"
                )
            if isinstance(result, BaseException):
                raise result
        return int(results[-1].seq)  # type: ignore[union-attr]

    def truncate(self, below: int) -> None:
        """Purge the entries with offsets below ``below``."""

        async def purge() -> None:
            await self._conn.js.purge_stream(self.stream, seq=below)

        self._run(purge(), f"truncate {self.stream} below {below}")

    # --- reading ---------------------------------------------------------------------------------

    def read(self, after: int, limit: int = 1000) -> list[Entry]:
        entries: list[Entry] = self._run(self._read(after, limit), f"read {self.stream}")
        if entries:
            with self._lock:
                self._known = max(self._known, entries[-1].offset)
                self._epoch = max(self._epoch, max(e.epoch for e in entries))
        return entries

    async def _read(self, after: int, limit: int) -> list[Entry]:
        js = self._conn.js
        state = (await js.stream_info(self.stream)).state
        first, last = state.first_seq, state.last_seq
        if after + 1 < first and last >= first:
            raise LogTruncatedError(
                f"entries after offset {after} were truncated from {self.stream} (it starts at {first}); "
                "load the latest version and read from its folded offset",
                first,
            )
        upto = min(last, after + limit)
        out: list[Entry] = []
        for start in range(after + 1, upto + 1, 256):
            batch = range(start, min(upto, start + 255) + 1)
            msgs = await asyncio.gather(*(js.get_msg(self.stream, seq=s, direct=True) for s in batch))
            for msg in msgs:
                headers = msg.headers or {}
                out.append(Entry(int(msg.seq or 0), int(headers.get(_EPOCH, 0)), msg.data or b""))
        return out

    def last_offset(self) -> int:
        async def last() -> int:
            return int((await self._conn.js.stream_info(self.stream)).state.last_seq)

        return int(self._run(last(), f"read the last offset of {self.stream}"))

    # --- watching --------------------------------------------------------------------------------

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` from a daemon thread after each append (and every second)."""
        with self._lock:
            stop = self._watchers.add(callback)
            if self._watcher is None:
                self._run(self._subscribe(), f"subscribe to {self.subject}")
                self._watcher = threading.Thread(
                    target=self._notify, name=f"marrow-log-{self.name}", daemon=True
                )
                self._watcher.start()
        return stop

    async def _subscribe(self) -> None:
        async def on_message(_msg: Any) -> None:
            self._wake.set()

        await self._conn.nc.subscribe(self.subject, cb=on_message)

    def _notify(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.recheck_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._watchers.notify()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5)
        self._conn.close()

    def __enter__(self) -> NatsWriteLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
