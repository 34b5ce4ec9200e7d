"""The event bus at scale: a NATS JetStream stream, one subject, one durable pull consumer.

* :meth:`NatsBus.publish` returns once JetStream has stored each event (its publish acknowledgement).
  Each message carries ``Nats-Msg-Id: <stream>-<seq>``, so the server drops a duplicate that the
  relay sends again (after a crash, or from :meth:`Relay.recover`) within its duplicate window.
* :meth:`NatsBus.receive` fetches from the durable consumer (``durable``; every ingestion worker
  sharing it shares the work). ``ack`` settles a message; ``retry(delay)`` naks it with a delay and
  JetStream delivers it again, without limit (``max_deliver=-1``): "retried until ingested". A worker
  that dies holding messages gets them redelivered after ``ack_wait``.

Threading: nats-py is asyncio-only; the bus owns one connection on an event loop in a daemon thread,
and each call hands a coroutine to it and waits with a deadline, so a server that is down gives an
:class:`~marrow.errors.EventBusError` naming it rather than a hang. ``close()`` drains and stops it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.js.api import ConsumerConfig, StreamConfig

from marrow.cms.events import ContentEvent, Delivery
from marrow.errors import EventBusError

__all__ = ["NatsBus", "stream_name"]

T = TypeVar("T")
_DECODER = msgspec.json.Decoder(ContentEvent)


def stream_name(subject: str) -> str:
    """The JetStream stream that holds ``subject`` (``marrow.cms.events`` → ``MARROW_CMS_EVENTS``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", subject).upper()


class _NatsDelivery:
    def __init__(self, bus: NatsBus, msg: Any):
        self._bus, self._msg = bus, msg
        self.event: ContentEvent = _DECODER.decode(msg.data)
        self.attempt: int = msg.metadata.num_delivered

    def ack(self) -> None:
        self._bus._run(self._msg.ack(), f"acknowledge event {self.event.seq}")

    def retry(self, delay: float) -> None:
        self._bus._run(self._msg.nak(delay=delay), f"ask for event {self.event.seq} again")


class NatsBus:
    """Content events on a JetStream stream (created if missing, file storage, ``replicas`` copies)."""

    def __init__(
        self,
        servers: str | Sequence[str] = "nats://127.0.0.1:4222",
        subject: str = "marrow.cms.events",
        durable: str = "marrow-ingest",
        *,
        replicas: int = 1,
        ack_wait: float = 30.0,
        timeout: float = 5.0,
    ):
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.subject, self.durable, self.timeout = subject, durable, timeout
        self.stream = stream_name(subject)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="marrow-cms-nats", daemon=True)
        self._thread.start()
        self._nc: Any = None
        try:
            self._run(self._connect(replicas, ack_wait), "connect", 3 * timeout)
        except BaseException:
            self._stop()
            raise

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:  # cancel what is left (a connect still retrying, client tasks), then close cleanly
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _connect(self, replicas: int, ack_wait: float) -> None:
        self._nc = await nats.connect(
            self.servers, connect_timeout=self.timeout, allow_reconnect=True, max_reconnect_attempts=-1
        )
        self._js = self._nc.jetstream(timeout=self.timeout)
        try:
            await self._js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await self._js.add_stream(
                StreamConfig(name=self.stream, subjects=[self.subject], num_replicas=replicas)
            )
        config = ConsumerConfig(ack_wait=ack_wait, max_deliver=-1)
        self._sub = await self._js.pull_subscribe(self.subject, durable=self.durable, config=config)

    def publish(self, events: Sequence[ContentEvent]) -> None:
        async def send() -> None:
            acks = [
                self._js.publish(
                    self.subject,
                    msgspec.json.encode(e),
                    headers={"Nats-Msg-Id": f"{self.stream}-{e.seq}"},
                )
                for e in events
            ]
            await asyncio.gather(*acks)

        self._run(send(), f"publish {len(events)} event(s)", self.timeout + len(events) / 1000)

    def receive(self, max_events: int, timeout: float) -> list[Delivery]:
        async def fetch() -> list[Any]:
            try:
                return list(await self._sub.fetch(max_events, timeout=timeout))
            except (TimeoutError, nats.errors.TimeoutError):
                return []

        msgs = self._run(fetch(), "receive events", timeout + self.timeout)
        return [_NatsDelivery(self, m) for m in msgs]

    def delete_stream(self) -> None:
        """Delete the stream and everything in it (tests clean up with this)."""
        self._run(self._js.delete_stream(self.stream), f"delete stream {self.stream}")

    def _run(self, coro: Coroutine[Any, Any, T], what: str, deadline: float | None = None) -> T:
        where = ", ".join(self.servers)
        if not self._thread.is_alive():
            coro.close()
            raise EventBusError(f"cannot {what}: the connection to NATS at {where} is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self.timeout if deadline is None else deadline)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise EventBusError(f"cannot {what}: NATS at {where} did not answer in time; is it up?") from None
        except (TimeoutError, nats.errors.Error, OSError) as e:
            raise EventBusError(f"cannot {what} on NATS at {where}: {e!r}") from e

    def close(self) -> None:
        """Close the connection, then stop the loop and its thread (idempotent). Nothing is left to
        flush: every publish, ack and nak was confirmed before its call returned."""
        if self._nc is not None and self._thread.is_alive():
            with contextlib.suppress(EventBusError):
                self._run(self._nc.close(), "close the connection")
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
