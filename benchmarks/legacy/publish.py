"""Ingestion's writer on the legacy path: each bulk update's records published to a JetStream stream
(NATS JetStream in the role Kafka had).

The records go out as :class:`Batch` messages of at most ``chunk_bytes`` each (a message has a size
limit, a catalogue import does not), records as JSON — what the consumer stores. Nothing makes the
messages of one bulk update atomic: the consumer applies them one batch of messages at a time, as a
log-and-consumer read path does. The offset returned is the stream sequence of the last message;
``meta/applied`` reaching it says the consumer has stored the whole update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import msgspec
import nats.js.errors
from nats.js.api import StorageType, StreamConfig

from marrow.store.nats_connection import Connection

_JSON = msgspec.json.Encoder()
_MSGPACK = msgspec.msgpack.Encoder()


class Batch(msgspec.Struct, array_like=True):
    """One message: records as ``(type name, JSON)`` and deletions as ``(type name, primary key)``."""

    upserts: list[tuple[str, bytes]]
    deletes: list[tuple[str, int]]


def encode(upserts: Sequence[Any], deletes: Sequence[tuple[str, Any]], chunk_bytes: int) -> list[bytes]:
    """A bulk update as :class:`Batch` messages of at most about ``chunk_bytes`` each (a record larger
    than that goes alone); deletions travel in the first."""
    batches: list[Batch] = [Batch([], [(t, k) for t, k in deletes])]
    size = 0
    for record in upserts:
        body = _JSON.encode(record)
        if size + len(body) > chunk_bytes and batches[-1].upserts:
            batches.append(Batch([], []))
            size = 0
        batches[-1].upserts.append((type(record).__name__, body))
        size += len(body)
    return [_MSGPACK.encode(b) for b in batches]


class StreamWriter:
    """An ingestion :class:`~marrow.ingest.Writer` publishing to the stream ``stream`` (created when
    missing, on ``subject``). Lifecycle: connected on construction; :meth:`close` drains."""

    def __init__(
        self, servers: str, stream: str, subject: str, chunk_bytes: int = 512 * 1024, timeout: float = 10.0
    ):
        self.stream, self.subject, self.chunk_bytes = stream, subject, chunk_bytes
        self.published = 0  # messages
        self._conn = Connection(servers, timeout, "legacy-publisher")
        self._conn.run(self._open(), f"open the stream {stream}")

    async def _open(self) -> None:
        try:
            await self._conn.js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await self._conn.js.add_stream(
                StreamConfig(name=self.stream, subjects=[self.subject], storage=StorageType.FILE)
            )

    def bulk_update(self, upserts: Sequence[Any], deletes: Sequence[tuple[str, Any]] = ()) -> int:
        payloads = encode(upserts, deletes, self.chunk_bytes)
        return self._conn.run(self._publish(payloads), "publish a bulk update", 60.0)

    async def _publish(self, payloads: list[bytes]) -> int:
        seq = 0
        for payload in payloads:
            ack = await self._conn.js.publish(self.subject, payload, stream=self.stream)
            seq = ack.seq
        self.published += len(payloads)
        return seq

    def delete_stream(self) -> None:
        async def delete() -> None:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._conn.js.delete_stream(self.stream)

        self._conn.run(delete(), f"delete the stream {self.stream}")

    def close(self) -> None:
        self._conn.close()
