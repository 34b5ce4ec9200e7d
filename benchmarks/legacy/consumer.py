"""The legacy consumer, a process of its own: the stream in, the key-value table out.

It pulls messages in batches (up to ``--batch``), and for each batch writes in one transaction the
records' JSON under their keys, the row lists the batch changed (:class:`legacy.rows.RowIndex`) and
``meta/applied`` (the stream sequence of the batch's last message); then it acknowledges the batch.
A crash before the commit means the batch is delivered again and rewritten, which changes nothing.

    python -m legacy.consumer --servers nats://127.0.0.1:4222 --stream S --subject s \\
        --dsn postgresql://postgres@127.0.0.1:5432/test --table kv_1234

It runs until it is sent SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

import msgspec
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig

from legacy import keys
from legacy.kv import KVTable
from legacy.publish import Batch
from legacy.rows import RowIndex
from marrow.errors import BlobError
from marrow.store.nats_connection import Connection


class Consumer:
    """Applies batches of stream messages to the table; see the module docstring."""

    def __init__(self, table: KVTable):
        self.table = table
        self.index = RowIndex()
        self.collection_slugs: dict[int, str] = {}
        self._decoder = msgspec.msgpack.Decoder(Batch)

    def apply(self, payloads: list[bytes], last_seq: int) -> int:
        """Write what ``payloads`` (encoded :class:`Batch` es) say; returns the keys written."""
        upserts: dict[str, bytes] = {}
        deletes: list[str] = []
        records: list[tuple[str, dict[str, Any]]] = []
        removed: list[tuple[str, Any]] = []
        for payload in payloads:
            batch = self._decoder.decode(payload)
            for type_name, body in batch.upserts:
                record = msgspec.json.decode(body)
                key = record["slug"] if type_name == "Collection" else record["id"]
                if type_name == "Collection":
                    self.collection_slugs[record["id"]] = record["slug"]
                upserts[keys.record_key(type_name, key)] = body
                records.append((type_name, record))
            for type_name, key in batch.deletes:
                if type_name == "Collection":
                    key = self.collection_slugs.pop(key, key)
                deletes.append(keys.record_key(type_name, key))
                upserts.pop(keys.record_key(type_name, key), None)
                removed.append((type_name, key))
        changed = self.index.apply(records, removed)
        for key, value in self.index.changed_lists(changed).items():
            if value is None:
                deletes.append(key)
            else:
                upserts[key] = value
        upserts[keys.APPLIED] = str(last_seq).encode()
        self.table.write(upserts, deletes)
        return len(upserts) + len(deletes)


def run(
    servers: str, stream: str, subject: str, dsn: str, table: str, batch: int, stop: threading.Event
) -> None:
    """Consume until ``stop`` is set."""
    conn = Connection(servers, 10.0, "legacy-consumer")
    kv = KVTable(dsn, table)
    consumer = Consumer(kv)
    config = ConsumerConfig(ack_policy=AckPolicy.ALL, max_ack_pending=-1)
    sub = conn.run(
        conn.js.pull_subscribe(subject, durable="consumer", stream=stream, config=config), "subscribe"
    )

    async def fetch() -> list[Any]:
        try:
            return await sub.fetch(batch, timeout=0.25)
        except (TimeoutError, nats.errors.TimeoutError):  # nothing new (nats-py raises either)
            return []

    try:
        while not stop.is_set():
            try:
                messages = conn.run(fetch(), "fetch from the stream", 30.0)
            except BlobError as e:  # a slow or restarting server: the messages wait in the stream
                print(f"legacy consumer: {e}; fetching again", file=sys.stderr)
                continue
            if not messages:
                continue
            last = messages[-1]
            consumer.apply([m.data for m in messages], last.metadata.sequence.stream)
            conn.run(last.ack(), "acknowledge a batch")  # AckPolicy.ALL: every message up to it
    finally:
        kv.close()
        conn.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", required=True)
    p.add_argument("--stream", required=True)
    p.add_argument("--subject", required=True)
    p.add_argument("--dsn", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(a.servers, a.stream, a.subject, a.dsn, a.table, a.batch, stop)
    sys.exit(0)


if __name__ == "__main__":
    main()
