"""The test helpers users get in ``marrow.store.testing``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from marrow.store import ReadState, Schema, WriteState
from marrow.store.testing import (
    NAN,
    InMemoryBlobStore,
    canonical,
    dump,
    publish_cycle,
    records_equal,
    round_trip_delta,
    round_trip_snapshot,
)

SCHEMA = Schema.parse(
    "Person @PrimaryKey(id) { long id; string name; }"
    "Title @PrimaryKey(id) { long id; string title; double score; list<Person> cast; set<string> tags; }"
)


@dataclass(frozen=True)
class Person:
    __primary_key__ = "id"
    id: int
    name: str


@dataclass(frozen=True)
class Title:
    __primary_key__ = "id"
    id: int
    title: str
    score: float = 0.0
    cast: tuple[Person, ...] = ()
    tags: frozenset[str] = frozenset()


def test_a_consumer_walks_forward_and_back_through_published_cycles() -> None:
    store = InMemoryBlobStore()
    ws = WriteState(SCHEMA)
    checksums = {}
    for version in range(1, 5):
        ws.add_all([Title(i, f"t{i}", cast=(Person(i % 2, "p"),)) for i in range(version, version + 3)])
        cycle = ws.commit(version=version)
        published = publish_cycle(store, cycle)
        assert [r.kind for r in published] == (
            ["snapshot"] if version == 1 else ["snapshot", "delta", "reverse"]
        )
        checksums[version] = ReadState.from_snapshot(cycle.snapshot()).checksum()
    assert sorted(r.version for r in store.refs() if r.kind == "snapshot") == [1, 2, 3, 4]
    assert store.retrieve_delta(4) is None and store.retrieve_reverse_delta(1) is None

    found = store.retrieve_snapshot(1)
    assert found is not None
    state = ReadState.from_snapshot(found[1])
    while (delta := store.retrieve_delta(state.version)) is not None:
        state = state.apply_delta(delta[1])
        assert state.checksum() == checksums[state.version]
    assert state.version == 4
    while (reverse := store.retrieve_reverse_delta(state.version)) is not None:
        state = state.apply_delta(reverse[1])
        assert state.checksum() == checksums[state.version]
    assert state.version == 1


def test_publish_cycle_needs_version_numbers() -> None:
    ws = WriteState(SCHEMA)
    ws.add(Title(1, "t"))
    with pytest.raises(ValueError, match="version number"):
        publish_cycle(InMemoryBlobStore(), ws.commit())


def test_round_trip_snapshot_takes_objects_or_mappings_by_type() -> None:
    by_objects = round_trip_snapshot(
        SCHEMA, [Title(1, "Dark", cast=(Person(7, "Ann"),), tags=frozenset({"a"}))]
    )
    by_type = round_trip_snapshot(
        SCHEMA,
        {
            "Title": [
                {"id": 1, "title": "Dark", "score": 0.0, "cast": [{"id": 7, "name": "Ann"}], "tags": ["a"]}
            ]
        },
    )
    assert by_objects["Title"].get(1).cast[0].name == "Ann"
    assert by_objects.checksum() == by_type.checksum()
    assert records_equal(by_objects, by_type)


def test_round_trip_delta_returns_equal_states_also_across_a_schema_change() -> None:
    before = [Title(i, f"t{i}") for i in range(5)]
    after = [Title(i, f"t{i}", tags=frozenset({"new"})) for i in range(3, 8)]
    via_delta, via_snapshot = round_trip_delta(before, after, SCHEMA)
    assert via_delta.checksum() == via_snapshot.checksum() and records_equal(via_delta, via_snapshot)
    assert sorted(t.id for t in via_delta["Title"]) == [3, 4, 5, 6, 7]

    wider = Schema.parse(SCHEMA.text.replace("    string title;\n", "    string title;\n    int year;\n"))
    via_delta, via_snapshot = round_trip_delta(before, after, SCHEMA, schema_after=wider)
    assert via_delta.schema == wider and records_equal(via_delta, via_snapshot)
    assert {t.year for t in via_delta["Title"]} == {None}


def test_dump_shows_records_by_type_and_ordinal() -> None:
    state = round_trip_snapshot(
        SCHEMA, [Title(1, "Dark", math.nan, (Person(7, "Ann"), Person(7, "Ann")), frozenset({"b", "a"}))]
    )
    d = dump(state)
    assert list(d) == ["Person", "Title"]
    assert d["Person"] == {0: {"id": 7, "name": "Ann"}}
    title = d["Title"][0]
    assert title["cast"] == [0, 0] and title["tags"] == frozenset({"a", "b"})
    assert title["score"] is NAN  # every NaN is the one NAN, so dumps compare equal
    assert dump(state) == dump(
        round_trip_snapshot(
            SCHEMA, [Title(1, "Dark", math.nan, (Person(7, "Ann"),) * 2, frozenset({"a", "b"}))]
        )
    )


def test_records_equal_tells_states_apart() -> None:
    a = round_trip_snapshot(SCHEMA, [Title(1, "Dark"), Title(2, "Other")])
    assert records_equal(a, round_trip_snapshot(SCHEMA, [Title(1, "Dark"), Title(2, "Other")]))
    assert not records_equal(a, round_trip_snapshot(SCHEMA, [Title(1, "Dark"), Title(2, "Changed")]))
    assert not records_equal(
        a, round_trip_snapshot(SCHEMA, [Title(2, "Other"), Title(1, "Dark")])
    )  # ordinals
    assert not records_equal(a, round_trip_snapshot(SCHEMA, [Title(1, "Dark")]))


def test_canonical() -> None:
    assert canonical([1.0, math.nan, {"k": {math.nan}}])[1] is NAN
    assert canonical({"k": {math.nan}}) == {"k": frozenset({NAN})}
    assert canonical(frozenset({1, 2})) == frozenset({1, 2}) and canonical("x") == "x"
