"""Incremental cycles against a model: any sequence of add-or-modify and delete by key, cycle after
cycle, leaves exactly the model's records — in the producer's state, and in a consumer that follows
the deltas. (The producer's integrity check compares the delta's result with the snapshot each time.)"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_lifecycle import SCHEMA, Show

from marrow.store import Producer
from marrow.store.consumer import Consumer
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore

keys = st.integers(0, 12)
put = st.tuples(st.just("put"), keys, st.sampled_from(["a", "b", "c"]), st.integers(0, 2))
delete = st.tuples(st.just("delete"), keys, st.just(""), st.just(0))
cycles = st.lists(st.lists(st.one_of(put, delete), max_size=8), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    initial=st.dictionaries(keys, st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2)), min_size=1),
    steps=cycles,
)
def test_incremental_cycles_keep_exactly_the_models_records(
    initial: dict[int, tuple[str, int]], steps: list[list[tuple[str, int, str, int]]]
) -> None:
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, blobs, announcer)
    model = dict(initial)
    producer.run_cycle(lambda w: w.add_all(Show(k, n, s) for k, (n, s) in model.items()))
    consumer = Consumer(blobs, announcer)
    consumer.refresh()
    for ops in steps:

        def change(inc: Any, ops: list[tuple[str, int, str, int]] = ops) -> None:
            for op, key, name, seasons in ops:
                if op == "put":
                    inc.add_or_modify(Show(key, name, seasons))
                else:
                    inc.delete("Show", key)

        producer.run_incremental(change)
        for op, key, name, seasons in ops:
            if op == "put":
                model[key] = (name, seasons)
            else:
                model.pop(key, None)
        state = consumer.refresh()
        assert {v.id: (v.name, v.seasons) for v in state["Show"]} == model
        assert producer.state is not None and state.tag == producer.state.tag
        assert {v.id: (v.name, v.seasons) for v in producer.state["Show"]} == model
