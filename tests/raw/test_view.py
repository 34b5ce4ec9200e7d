"""Views of a base version plus the in-flight overlay, checked against a model (a dict per offset),
and against the version that folding the same entries produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow import store
from marrow.raw import FOLDED_OFFSET, Dataset, Delete, Overlay, Records, Upsert, View
from marrow.raw.ops import BulkUpdate, Validator
from marrow.raw.overlay import normal_key
from marrow.store import Float, Int
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore


@dataclass(frozen=True)
class Person:
    __primary_key__ = "id"
    id: int
    name: str


@dataclass(frozen=True)
class Show:
    __primary_key__ = "id"
    id: int
    name: str | None
    year: Int | None
    genres: list[str] | None
    tags: frozenset[str] | None
    scores: dict[str, float] | None
    rating: Float | None
    lead: Person | None
    poster: bytes | None


SCHEMA = store.Schema.from_classes(Show, Person)
WORDS = ["dark", "dawn", "night", "ozark", "crown", "da"]

# a referenced, keyed record cannot change (the writer refuses it): one name per id
people = st.integers(1, 3).map(lambda i: Person(i, ["Ann", "Bo", "Cy"][i - 1]))
shows = st.builds(
    Show,
    st.integers(0, 12),
    st.none() | st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    st.none() | st.integers(1900, 2030),
    st.none() | st.lists(st.sampled_from(["drama", "crime", "comedy"]), max_size=3),
    st.none() | st.frozensets(st.sampled_from(["new", "hot"])),
    st.none() | st.dictionaries(st.sampled_from(["imdb", "rt"]), st.floats(0, 10)),
    st.none() | st.sampled_from([0.5, 2.25]),
    st.none() | people,
    st.none() | st.binary(max_size=4),
)
ops = st.one_of(shows.map(Upsert), st.integers(0, 12).map(lambda k: Delete("Show", k)))


def bulk(draw_ops: list[Any]) -> list[Any]:
    """The ops of one bulk update, each key once (the writer refuses a key named twice)."""
    seen, out = set(), []
    for op in draw_ops:
        key = op.record.id if isinstance(op, Upsert) else op.key
        if key not in seen:
            seen.add(key)
            out.append(op)
    return out


def plain(record: Any) -> Any:
    """A record as comparable plain data (sets and maps ordered)."""
    if record is None:
        return None
    out = {}
    for name in SCHEMA["Show"].field_names if hasattr(record, "poster") else ["id", "name"]:
        v = getattr(record, name)
        if isinstance(v, frozenset):
            v = sorted(v)
        elif isinstance(v, dict):
            v = sorted(v.items())
        elif hasattr(v, "name") and hasattr(v, "id"):
            v = plain(v)
        out[name] = v
    return out


def base_state(records: list[Show], folded: int) -> store.ReadState:
    write = store.WriteState(SCHEMA)
    by_key = {r.id: r for r in records}
    write.add_all(by_key.values())
    return store.ReadState.from_snapshot(write.commit(version=1, meta={FOLDED_OFFSET: folded}).snapshot())


@settings(max_examples=60)
@given(
    st.lists(shows, max_size=8),
    st.lists(st.lists(ops, min_size=1, max_size=4), max_size=8),
    st.data(),
)
def test_a_view_reads_what_the_model_holds_at_its_offset(
    initial: list[Show], updates: list[list[Any]], data: st.DataObject
) -> None:
    floor = 5
    base = base_state(initial, floor)
    validator = Validator(SCHEMA)
    model: dict[int, Any] = {r.id: r for r in initial}
    models = {floor: dict(model)}
    overlay = Overlay(SCHEMA, base)
    offset = floor
    for update in updates:
        offset += 1
        changes = validator.changes(bulk(update))
        overlay.apply(offset, BulkUpdate.decode(BulkUpdate(f"r{offset}", changes).encode()))
        for op in bulk(update):
            if isinstance(op, Upsert):
                model[op.record.id] = op.record
            else:
                model.pop(op.key, None)
        models[offset] = dict(model)
    at = data.draw(st.integers(floor, offset), label="view offset")
    check_view(View(overlay, at)["Show"], models[at])
    check_view(View(overlay)["Show"], models[offset])

    # folding the same entries gives a version that holds what the model holds
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = store.Producer(SCHEMA, blobs, announcer)
    producer.run_cycle(lambda w: w.add_all({r.id: r for r in initial}.values()))
    from marrow.raw.record import RecordClasses

    classes = RecordClasses(SCHEMA)

    def fold(inc: store.Incremental) -> None:
        for _, entry in overlay.entries:
            for c in entry.changes:
                if c.values is None:
                    inc.delete(c.type, normal_key(c.key))
                else:
                    inc.add_or_modify(classes.record(c.type, c.values), c.type)

    producer.run_incremental(fold, meta={FOLDED_OFFSET: offset})
    if producer.state is None or producer.state.meta.get(FOLDED_OFFSET) != offset:
        return  # the entries changed nothing: no version to compare
    folded = overlay.rebased(producer.state)
    assert len(folded) == 0 and folded.offset == offset
    check_view(View(folded)["Show"], models[offset])
    check_view(producer.state["Show"], models[offset])  # the plain store reader, the same protocol


def check_view(shows: Records, model: dict[int, Any]) -> None:
    keys = list(range(0, 13))
    for k in keys:
        assert plain(shows.get(k)) == plain(model.get(k)), k
    assert [plain(r) for r in shows.lookup(keys)] == [plain(model.get(k)) for k in keys]
    assert len(shows) == len(model)
    assert sorted(r.id for r in shows) == sorted(model)
    selected = shows.select(keys, ["name", "year", "genres"])
    assert selected["name"] == [model[k].name if k in model else None for k in keys]
    assert selected["genres"] == [model[k].genres if k in model else None for k in keys]
    for genre in ("drama", "crime"):
        expected = {r.id for r in model.values() if r.genres and genre in r.genres}
        assert {r.id for r in shows.find("genres", genre)} == expected
    for year in {r.year for r in model.values()} - {None}:
        assert {r.id for r in shows.find("year", year)} == {r.id for r in model.values() if r.year == year}
    for prefix in ("da", "o", "night", "zz"):
        expected = {
            r.id for r in model.values() if r.name and any(w.startswith(prefix) for w in r.name.split())
        }
        found = shows.complete("name", prefix, limit=100)
        assert {r.id for r in found} == expected
        lengths = [min(len(w) for w in r.name.split() if w.startswith(prefix)) for r in found]
        assert lengths == sorted(lengths)  # shorter matching words first, as the prefix index orders
        assert len(shows.complete("name", prefix, limit=2)) == min(2, len(expected))


def test_overlay_records_read_like_record_views() -> None:
    validator = Validator(SCHEMA)
    show = Show(1, "Dark", 2017, ["drama"], frozenset({"new"}), {"imdb": 8.7}, 0.5, Person(2, "Ann"), b"\x00")
    overlay = Overlay(SCHEMA, None)
    overlay.apply(1, BulkUpdate.decode(BulkUpdate(None, validator.changes([Upsert(show)])).encode()))
    in_flight = View(overlay)["Show"].get(1)
    stored = base_state([show], 0)["Show"].get(1)
    for name in SCHEMA["Show"].field_names:
        if name != "lead":
            assert getattr(in_flight, name) == getattr(stored, name), name
            assert type(getattr(in_flight, name)) is type(getattr(stored, name)), name
    assert in_flight.lead.name == stored.lead.name == "Ann"
    assert in_flight.to_dict() == stored.to_dict() | {"tags": ["new"]}
    assert repr(in_flight) == repr(stored) == "Show(id=1)"
    assert in_flight.ordinal is None
    with pytest.raises(AttributeError, match="read-only"):
        in_flight.name = "x"  # type: ignore[misc]


def test_a_view_keeps_its_offset_while_the_overlay_moves_on() -> None:
    validator = Validator(SCHEMA)
    overlay = Overlay(SCHEMA, base_state([Show(1, "One", None, None, None, None, None, None, None)], 0))
    before = View(overlay)
    overlay.apply(1, BulkUpdate(None, validator.changes([Delete("Show", 1), Upsert(Show(2, *[None] * 8))])))
    after = View(overlay)
    assert before["Show"].get(1) is not None and before["Show"].get(2) is None and len(before["Show"]) == 1
    assert after["Show"].get(1) is None and after["Show"].get(2) is not None and len(after["Show"]) == 1
    assert after["Show"].version_of(2) == 1 and after["Show"].version_of(7) == 0


def titles_named(dataset: Dataset, ids: list[int]) -> list[str | None]:
    """Code written once against the protocol."""
    return dataset["Show"].select(ids, ["name"])["name"]


def test_a_read_state_and_a_view_satisfy_the_same_protocol() -> None:
    state = base_state([Show(1, "One", *[None] * 7)], 0)
    view = View(Overlay(SCHEMA, state))
    assert isinstance(state, Dataset) and isinstance(view, Dataset)
    assert isinstance(state["Show"], Records) and isinstance(view["Show"], Records)
    assert titles_named(state, [1, 2]) == titles_named(view, [1, 2]) == ["One", None]
