"""One NATS connection on an event loop of its own: what every NATS-backed part of Marrow shares
(the blob store and announcements here, the write log and lease in :mod:`marrow.raw`).

Threading model: nats-py is asyncio-only and Marrow's protocols are synchronous. Each object owns
one NATS connection on an event loop in a daemon thread of its own; a public method hands a coroutine
to that loop and waits for it with a deadline, so a server that is down or silent gives a
:class:`~marrow.errors.BlobError` naming the server and the operation, never a hang. Nothing is
buffered while the connection is down (a failed announcement is not sent later); the connection
reconnects in the background, for as long as the object lives. Call ``close()``, or use ``with``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Self, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client

from marrow.errors import BlobError

__all__ = ["DEFAULT_SERVERS", "MIN_TRANSFER_RATE", "NETWORK_ERRORS", "Connection", "Owner", "Servers"]

log = logging.getLogger(__name__)
T = TypeVar("T")

Servers = str | Sequence[str]  #: one server URL, or several of one cluster
DEFAULT_SERVERS = "nats://127.0.0.1:4222"
#: The slowest transfer a blob may make before it counts as a hang: publishing or retrieving a blob
#: of ``size`` bytes may take ``timeout + size / MIN_TRANSFER_RATE`` seconds.
MIN_TRANSFER_RATE = 1 << 20
NETWORK_ERRORS = (nats.errors.Error, OSError, asyncio.TimeoutError)


class Connection:
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
        except NETWORK_ERRORS as err:
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
        except (concurrent.futures.TimeoutError, *NETWORK_ERRORS) as err:
            log.debug("closing the connection to NATS at %s: %r", self.where, err)
        self._stop()

    async def _drain(self) -> None:
        try:
            await self.nc.drain()
        except NETWORK_ERRORS:
            await self.nc.close()

    def _stop(self) -> None:
        self.closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


class Owner:
    """What every NATS-backed object shares: its connection, ``close()`` and ``with``."""

    _conn: Connection

    def close(self) -> None:
        """Release the connection and its thread; idempotent. Later calls on the server raise BlobError."""
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
