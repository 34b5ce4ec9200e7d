"""Long strings (story bodies) are deflated with a trained dictionary; short ones keep symbols. Either
way a column round-trips through snapshots, deltas and reverse deltas, and reads the same."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow.errors import CorruptBlobError
from marrow.store import ReadState, Schema, WriteState
from marrow.store._strings import Deflate, Symbols, train
from marrow.store.testing import records_equal, round_trip_delta, round_trip_snapshot

SCHEMA = Schema.parse(
    """
    Story @PrimaryKey(id) {
        long id;
        string slug;
        string body;
    }
    """
)
_letters = random.Random(0)
WORDS = [
    "".join(_letters.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(_letters.randrange(3, 10)))
    for _ in range(3000)
]


def body(rng: random.Random, n: int) -> str:
    """A story body as ingestion writes it: JSON blocks, an image path repeated per device."""
    path = f"/cdn/stories/{rng.randrange(2020, 2027)}/{rng.choice(WORDS)}-{rng.randrange(10**6)}.jpg"
    blocks: list[dict[str, Any]] = [
        {
            "kind": "text",
            "html": "<p>" + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 40))) + "</p>",
        }
        for _ in range(n)
    ]
    blocks.append(
        {
            "kind": "image",
            "images": {d: f"{path}?w={w}" for d, w in (("tv", 1280), ("web", 960), ("mobile", 480))},
        }
    )
    return json.dumps(blocks)


def stories(seed: int, count: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    return {
        "Story": [
            {"id": i, "slug": f"story-{i}", "body": body(rng, rng.randrange(1, 5))} for i in range(count)
        ]
    }


def test_long_values_train_deflate_and_short_ones_symbols() -> None:
    rng = random.Random(1)
    longs = [body(rng, 3).encode() for _ in range(400)]
    codec = train(longs)
    assert isinstance(codec, Deflate) and codec.nbytes <= 1 << 15
    pool, lengths = codec.encode(longs[:50])
    assert int(lengths.sum()) < 0.4 * sum(len(v) for v in longs[:50])  # far better than symbols' ~2×
    ends = np.cumsum(lengths.astype(np.int64))
    assert [
        codec.decode(pool[e - n : e]) for e, n in zip(ends, lengths.astype(np.int64), strict=True)
    ] == longs[:50]
    shorts = [f"Title {i} of the catalogue".encode() for i in range(2000)]
    assert not isinstance(train(shorts), Deflate)  # symbols (or plain, without the C encoder)


def test_a_deflated_column_round_trips_and_reads_in_bulk() -> None:
    records = stories(2, 300)
    state = round_trip_snapshot(SCHEMA, records)
    assert isinstance(state.types["Story"].columns["body"].symbols, Deflate)
    reader = state["Story"]
    assert [reader.get(i).body for i in range(300)] == [r["body"] for r in records["Story"]]
    cols = reader.read(reader.ordinals(), ["body"])
    assert sorted(cols["body"]) == sorted(r["body"] for r in records["Story"])
    assert state["Story"].find("slug", "story-7")[0].body == records["Story"][7]["body"]


@settings(max_examples=25)
@given(seed=st.integers(0, 10**6), changed=st.integers(0, 60), removed=st.integers(0, 20))
def test_deltas_and_reverse_deltas_of_deflated_bodies(seed: int, changed: int, removed: int) -> None:
    before = stories(seed, 200)
    rng = random.Random(seed + 1)
    after = {"Story": [dict(r) for r in before["Story"][removed:]]}
    for r in rng.sample(after["Story"], min(changed, len(after["Story"]))):
        r["body"] = body(rng, rng.randrange(1, 6))
    by_delta, by_snapshot = round_trip_delta(before, after, SCHEMA)
    assert records_equal(by_delta, by_snapshot) and by_delta.checksum() == by_snapshot.checksum()


def test_a_reverse_delta_leads_back_to_the_same_bodies() -> None:
    ws = WriteState(SCHEMA)
    for r in stories(5, 120)["Story"]:
        ws.add(r, "Story")
    first = ws.commit(version=1)
    state = ReadState.from_snapshot(first.snapshot())
    ws.keep_previous()
    ws.delete("Story", 3)
    ws.add({"id": 3, "slug": "story-3", "body": body(random.Random(9), 4)}, "Story")
    second = ws.commit(version=2)
    forward = state.apply_delta(second.delta())
    back = forward.apply_delta(second.reverse_delta())
    assert records_equal(back, state) and back["Story"].get(3).body == state["Story"].get(3).body


def test_an_oversized_deflate_dictionary_is_refused_as_corrupt() -> None:
    ws = WriteState(SCHEMA)
    for r in stories(3, 300)["Story"]:
        ws.add(r, "Story")
    blob = ws.commit(version=1).snapshot()
    state = ReadState.from_snapshot(blob)
    codec = state.types["Story"].columns["body"].symbols
    assert isinstance(codec, Deflate) and not isinstance(codec, Symbols)
    from marrow.store import blob as blob_module

    header = blob_module.read_header(blob)[1]
    section = header["types"]["Story"]["columns"]["body"]["symbols"]["deflate"]
    header["sections"][section][1] = (1 << 15) + 64  # claims a dictionary longer than deflate's window
    with pytest.raises(CorruptBlobError):
        blob_module._decode("snapshot", header, blob + b"\0" * (1 << 16))
