"""The legacy key space filled in memory, from render-ready records, the way the consumer fills the
table (no NATS or PostgreSQL): for tests of rows and page construction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from legacy.consumer import Consumer
from legacy.publish import encode


class DictTable:
    """A :class:`legacy.kv.KVTable` in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def write(self, upserts: dict[str, bytes], deletes: Sequence[str] = ()) -> None:
        self.values.update(upserts)
        for k in deletes:
            self.values.pop(k, None)

    def get_many(self, keys: list[str]) -> dict[str, bytes | None]:
        return {k: self.values.get(k) for k in keys}


def consumed(upserts: Sequence[Any], deletes: Sequence[tuple[str, Any]] = (), table: DictTable | None = None,
             consumer: Consumer | None = None) -> tuple[DictTable, Consumer]:  # fmt: skip
    """``table`` (a new one by default) after the consumer applied one bulk update of these records."""
    table = table if table is not None else DictTable()
    consumer = consumer if consumer is not None else Consumer(table)  # type: ignore[arg-type]
    consumer.table = table  # type: ignore[assignment]
    consumer.apply(encode(upserts, deletes, 4096), last_seq=1)
    return table, consumer
