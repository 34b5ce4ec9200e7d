"""Reads by primary key in bulk (TypeReader.lookup / select) and a version's meta from the producer."""

from __future__ import annotations

from dataclasses import dataclass

from marrow import store
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore


@dataclass(frozen=True)
class Item:
    __primary_key__ = "id"
    id: int
    name: str
    tags: list[str]


SCHEMA = store.Schema.from_classes(Item)


def state() -> store.ReadState:
    write = store.WriteState(SCHEMA)
    write.add_all([Item(1, "one", ["a"]), Item(2, "two", [])])
    return store.ReadState.from_snapshot(write.commit().snapshot())


def test_lookup_gives_records_in_key_order_and_none_where_absent() -> None:
    items = state()["Item"]
    assert [r.name if r else None for r in items.lookup([2, 3, 1])] == ["two", None, "one"]
    assert items.lookup([]) == []


def test_select_reads_chosen_fields_by_key() -> None:
    items = state()["Item"]
    assert items.select([2, 3, 1], ["name", "tags"]) == {
        "name": ["two", None, "one"],
        "tags": [[], None, ["a"]],
    }
    assert items.select([1, 2], ["name"]) == items.read(items.get_many([1, 2]), ["name"])


def test_the_producer_stores_meta_with_a_version() -> None:
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = store.Producer(SCHEMA, blobs, announcer)
    producer.run_cycle(lambda w: w.add(Item(1, "one", [])), meta={"raw_offset": 7})
    producer.run_incremental(lambda inc: inc.add_or_modify(Item(2, "two", [])), meta={"raw_offset": 9})
    consumer = store.Consumer(blobs, announcer)
    assert consumer.refresh(1).meta == {"raw_offset": 7}
    assert consumer.refresh(2).meta == {"raw_offset": 9}  # reached by the delta, which carries it
