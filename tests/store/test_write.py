"""The write state: what a record may hold, primary keys, and the lifecycle of cycles."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from marrow.errors import MarrowError, RecordError, SchemaError
from marrow.store import ReadState, Schema, WriteState
from marrow.store.testing import dump, records_equal

SCHEMA = Schema.parse(
    """
    Person @PrimaryKey(id) { long id; string name; }
    Award { string name; int year; }
    Title @PrimaryKey(id) {
        long id;
        string title;
        int year;
        float rating;
        double score;
        boolean kids;
        bytes poster;
        Person director;
        list<Person> cast;
        set<string> genres;
        map<string, double> scores;
        list<Award> awards;
    }
    Episode @PrimaryKey(show, number) { long show; int number; string name; }
    """
)


def load(ws: WriteState, version: int | None = None) -> ReadState:
    return ReadState.from_snapshot(ws.commit(version=version).snapshot())


# --- values --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [
        ("year", "2017", "is a int, but was given '2017' (str)"),
        ("year", 2017.0, "is a int, but was given 2017.0"),
        ("year", True, "is a int, but was given True"),
        ("year", 2**31, "outside -2147483648..2147483647"),
        ("year", -(2**31) - 1, "outside"),
        ("id", 2**63, "is a long; 9223372036854775808 is outside"),
        ("id", -(2**63) - 1, "outside"),
        ("score", "1.5", "is a double, but was given '1.5'"),
        ("score", True, "is a double"),
        ("rating", "x", "is a float, but was given 'x'"),
        ("kids", 1, "is a boolean, but was given 1"),
        ("kids", "yes", "is a boolean"),
        ("title", b"Dark", "is a string, but was given b'Dark'"),
        ("title", 5, "is a string"),
        ("poster", "not bytes", "is bytes"),
        ("director", {"id": "7"}, "Person.id is a long"),
        ("cast", [{"id": 1}, None], "a collection cannot hold null"),
        ("genres", {"drama", 5}, "is a string"),
        ("scores", {"imdb": "high"}, "is a double"),
        ("scores", {5: 1.0}, "is a string"),
    ],
)
def test_a_value_that_does_not_fit_its_field_is_a_record_error(
    field_name: str, value: Any, message: str
) -> None:
    ws = WriteState(SCHEMA)
    where = "Person.id" if field_name == "director" else f"Title.{field_name}"  # a referenced record's field
    with pytest.raises(RecordError, match=re.escape(where)) as info:
        ws.add({"id": 1, field_name: value}, "Title")
    assert message in str(info.value)
    # The write state is still usable, and the refused record is not in it.
    ws.add({"id": 2, "title": "Fine"}, "Title")
    state = load(ws)
    assert state["Title"].get(1) is None and state["Title"].get(2).title == "Fine"


@dataclass
class Person:
    __primary_key__ = "id"
    id: int
    name: str | None = None


@dataclass
class Title:
    __primary_key__ = "id"
    id: int
    title: str | None = None
    director: Any = None
    cast: list[Any] = field(default_factory=list)


def test_a_reference_to_the_wrong_type_is_a_record_error() -> None:
    ws = WriteState(SCHEMA)
    with pytest.raises(RecordError, match=r"Title\.director refers to Person, but was given a Title"):
        ws.add(Title(1, director=Title(2)))
    with pytest.raises(RecordError, match=r"Title\.cast refers to Person, but was given a Title"):
        ws.add(Title(1, cast=[Person(3), Title(2)]))


def test_accepted_values_read_back_as_written() -> None:
    ws = WriteState(SCHEMA)
    ws.add(
        {
            "id": -(2**63) + 1,
            "year": -(2**31),
            "rating": 2**24,  # an int is accepted where a float is expected
            "score": 7,
            "kids": False,
            "poster": bytearray(b"\x00\xff"),
            "genres": ["noir", "drama", "noir"],  # any iterable makes a set
            "scores": [("imdb", 8.5), ("rt", 0.9)],  # a mapping or pairs
            "director": Person(5, "Ann"),
            "cast": [Person(5, "Ann"), {"id": 6, "name": "Bo"}],
        },
        "Title",
    )
    t = load(ws)["Title"].get(-(2**63) + 1)
    assert t.year == -(2**31) and t.rating == 2.0**24 and t.score == 7.0 and t.kids is False
    assert t.poster == b"\x00\xff" and t.genres == frozenset({"noir", "drama"})
    assert t.scores == {"imdb": 8.5, "rt": 0.9}
    assert t.director.name == "Ann" and [p.name for p in t.cast] == ["Ann", "Bo"]
    assert t.cast[0] == t.director


def test_a_long_column_may_not_use_every_64_bit_code() -> None:
    ws = WriteState(SCHEMA)
    ws.add({"id": -(2**63)}, "Title")
    ws.add({"id": 2**63 - 1}, "Title")
    with pytest.raises(RecordError, match=r"Title\.id"):
        ws.commit()


def test_unknown_type_and_untyped_mapping() -> None:
    ws = WriteState(SCHEMA)
    with pytest.raises(SchemaError, match="no type 'Studio'"):
        ws.add({"name": "A24"}, "Studio")
    with pytest.raises(SchemaError, match="no type 'dict'"):
        ws.add({"id": 1})


# --- primary keys ----------------------------------------------------------------------------------------


def test_two_records_with_one_key_are_refused_naming_the_key() -> None:
    ws = WriteState(SCHEMA)
    ws.add({"id": 1, "title": "Dark"}, "Title")
    with pytest.raises(RecordError, match=r"two different Title records have the primary key \{'id': 1\}"):
        ws.add({"id": 1, "title": "Dark (2017)"}, "Title")
    ws.add({"show": 7, "number": 1, "name": "Pilot"}, "Episode")
    ws.add({"show": 7, "number": 2, "name": "Pilot"}, "Episode")
    with pytest.raises(RecordError, match=r"\{'show': 7, 'number': 2\}"):
        ws.add({"show": 7, "number": 2, "name": "Second"}, "Episode")


def test_a_key_conflict_through_references_is_refused() -> None:
    ws = WriteState(SCHEMA)
    ws.add(Title(1, director=Person(7, "Ann")))
    with pytest.raises(RecordError, match=r"Person records have the primary key \{'id': 7\}"):
        ws.add(Title(2, cast=[Person(7, "Annie")]))


def test_the_same_record_twice_is_one_record() -> None:
    ws = WriteState(SCHEMA)
    first = ws.add({"id": 1, "title": "Dark", "genres": ["a", "b"]}, "Title")
    assert ws.add({"id": 1, "title": "Dark", "genres": {"b", "a"}}, "Title") == first
    assert ws.add(Person(3, "Ann")) == ws.add(Person(3, "Ann"))
    state = load(ws)
    assert len(state["Title"]) == 1 and len(state["Person"]) == 1


def test_records_equal_but_for_their_nan_objects_are_one_record() -> None:
    ws = WriteState(SCHEMA)
    first = ws.add({"id": 1, "score": float("nan"), "rating": float("nan")}, "Title")
    assert ws.add({"id": 1, "score": float("nan"), "rating": float("nan")}, "Title") == first
    ws.commit()
    ws.add({"id": 1, "score": float("nan"), "rating": float("nan")}, "Title")
    assert not ws.commit().has_changes, "an unchanged record with a NaN changed"


# --- cycles ----------------------------------------------------------------------------------------------


def titles(state: ReadState) -> dict[int, str | None]:
    return {t.id: t.title for t in state["Title"]}


def test_a_cycle_starts_empty_unless_it_keeps_the_previous_records() -> None:
    ws = WriteState(SCHEMA)
    for i in range(1, 4):
        ws.add({"id": i, "title": f"t{i}"}, "Title")
    v1 = ws.commit(version=1)
    consumer = ReadState.from_snapshot(v1.snapshot())
    ordinals = {t.id: t.ordinal for t in consumer["Title"]}

    ws.keep_previous()
    assert ws.delete("Title", 2) is True
    assert ws.delete("Title", 2) is False
    assert ws.delete("Title", 99) is False
    assert ws.delete("Title", 3) is True  # modify: delete, then add under the same key
    ws.add({"id": 3, "title": "t3, revised"}, "Title")
    ws.add({"id": 4, "title": "t4"}, "Title")
    v2 = ws.commit(version=2)
    consumer = consumer.apply_delta(v2.delta())
    assert titles(consumer) == {1: "t1", 3: "t3, revised", 4: "t4"}
    assert consumer.checksum() == ReadState.from_snapshot(v2.snapshot()).checksum()
    assert consumer["Title"].get(1).ordinal == ordinals[1], "an unchanged record keeps its ordinal"
    freed = {ordinals[2], ordinals[3]}
    assert not freed & {consumer["Title"].get(k).ordinal for k in (3, 4)}, (
        "freed ordinals reused in their cycle"
    )

    ws.add({"id": 5, "title": "t5"}, "Title")  # a full cycle: earlier records are not carried over
    v3 = ws.commit(version=3)
    consumer = consumer.apply_delta(v3.delta())
    assert titles(consumer) == {5: "t5"}
    assert consumer["Title"].get(5).ordinal == min(freed), "a freed ordinal is reused in a later cycle"


def test_deleting_then_adding_the_same_record_keeps_its_ordinal() -> None:
    ws = WriteState(SCHEMA)
    before = ws.add({"id": 1, "title": "Dark"}, "Title")
    ws.add({"id": 2, "title": "Other"}, "Title")
    ws.commit()
    ws.keep_previous()
    ws.delete("Title", 1)
    assert ws.add({"id": 1, "title": "Dark"}, "Title") == before
    assert not ws.commit().has_changes


def test_delete_needs_a_primary_key() -> None:
    ws = WriteState(SCHEMA)
    with pytest.raises(SchemaError, match="Award has no primary key"):
        ws.delete("Award", "Oscar")


def test_delete_by_composite_key() -> None:
    ws = WriteState(SCHEMA)
    ws.add({"show": 7, "number": 1}, "Episode")
    ws.add({"show": 7, "number": 2}, "Episode")
    ws.commit()
    ws.keep_previous()
    assert ws.delete("Episode", (7, 1)) is True
    state = load(ws)
    assert [(e.show, e.number) for e in state["Episode"]] == [(7, 2)]


def test_a_reference_never_outlives_its_target() -> None:
    """Deleting a record that a kept record refers to must not leave the reference dangling: either
    the write state refuses, or the committed state still resolves every reference."""
    ws = WriteState(SCHEMA)
    ws.add(Title(1, director=Person(7, "Ann")))
    ws.commit(version=1)
    ws.keep_previous()
    try:
        ws.delete("Person", 7)
        state = load(ws, 2)
    except MarrowError:
        return
    live = set(state["Person"].ordinals().tolist())
    directors = state["Title"].read(state["Title"].ordinals(), ["director"])["director"]
    assert all(d is None or d in live for d in directors), "Title.director refers to a deleted Person"


def test_rollback_forgets_the_cycle() -> None:
    ws = WriteState(SCHEMA)
    ws.add({"id": 1, "title": "kept"}, "Title")
    v1 = ws.commit(version=1)
    ws.add({"id": 2, "title": "forgotten"}, "Title")
    ws.rollback()
    ws.add({"id": 3, "title": "new"}, "Title")
    v2 = ws.commit(version=2)
    consumer = ReadState.from_snapshot(v1.snapshot()).apply_delta(v2.delta())
    assert titles(consumer) == {3: "new"}


def test_an_unchanged_cycle_has_no_changes() -> None:
    ws = WriteState(SCHEMA)
    record = {"id": 1, "title": "Dark", "cast": [{"id": 2, "name": "Ann"}]}
    ws.add(record, "Title")
    v1 = ws.commit(version=1)
    ws.add(record, "Title")
    v2 = ws.commit(version=2)
    assert not v2.has_changes
    state = ReadState.from_snapshot(v1.snapshot()).apply_delta(v2.delta())
    assert state.checksum() == ReadState.from_snapshot(v2.snapshot()).checksum()
    assert state.version == 2


def test_a_producer_resumes_from_a_loaded_state() -> None:
    """A restarted producer starts from the state consumers hold; its next cycle is a delta to it."""
    ws = WriteState(SCHEMA)
    for i in range(20):
        ws.add(
            {"id": i, "title": f"t{i % 3}", "genres": ["a", "b"][: i % 3], "director": {"id": i % 4}}, "Title"
        )
    v1 = ws.commit(version=1, meta={"source": "test"})
    consumer = ReadState.from_snapshot(v1.snapshot())

    resumed = WriteState(SCHEMA, previous=consumer.types, tag=consumer.tag, version=consumer.version)
    for i in range(1, 21):  # 0 goes, 1..19 stay, 20 comes
        ws_record = {"id": i, "title": f"t{i % 3}", "genres": ["a", "b"][: i % 3], "director": {"id": i % 4}}
        resumed.add(ws_record, "Title")
    v2 = resumed.commit(version=2)
    after = consumer.apply_delta(v2.delta())
    assert after.checksum() == ReadState.from_snapshot(v2.snapshot()).checksum()
    assert records_equal(after, ReadState.from_snapshot(v2.snapshot()))
    for i in range(1, 20):
        assert after["Title"].get(i).ordinal == consumer["Title"].get(i).ordinal
    assert after["Title"].get(0) is None and after["Title"].get(20).title == "t2"
    back = after.apply_delta(v2.reverse_delta())
    assert back.checksum() == consumer.checksum()
    assert back.version == 1


def test_ordinals_returned_by_add_are_the_stored_ones() -> None:
    ws = WriteState(SCHEMA)
    given = {i: ws.add({"id": i, "title": str(i)}, "Title") for i in (30, 10, 20)}
    state = load(ws)
    assert {i: state["Title"].get(i).ordinal for i in given} == given
    assert sorted(given.values()) == list(range(3))
    assert np.array_equal(state["Title"].ordinals(), np.arange(3))
    assert dump(state)["Title"][given[10]]["title"] == "10"
