"""Schema evolution: a producer whose schema gains or loses fields and types between cycles.

A consumer that loaded a state written with the old schema follows the delta to the new one, reaches
what the new snapshot holds, and the reverse delta takes it back to exactly what it had.
"""

from __future__ import annotations

from typing import Any

import pytest
from catalog import SCHEMA, Version, versions
from hypothesis import given, settings

from marrow.errors import IncompatibleSchemaError
from marrow.store import ReadState, Schema, WriteState
from marrow.store.testing import canonical, dump, records_equal


def changed(*edits: tuple[str, str], extra: str = "") -> Schema:
    text = SCHEMA.text
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    return Schema.parse(text + extra)


VARIANTS = {
    "gains fields": changed(
        ("    string title;\n", "    string title;\n    string tagline;\n    list<int> ranks;\n"),
        ("    bytes photo;\n", "    bytes photo;\n    int age;\n"),
    ),
    "loses fields": changed(
        ("    int year;\n", ""), ("    set<string> genres;\n", ""), ("    bytes photo;\n", "")
    ),
    "gains a type": changed(extra="Studio @PrimaryKey(name) { string name; list<Person> founders; }"),
    "loses a type": changed(
        ("    list<Award> awards;\n", ""), ("Award {\n    string name;\n    int year;\n}\n", "")
    ),
}


def project(value: Any, type_name: str, schema: Schema) -> Any:
    """A record as ``to_dict()`` shows it under ``schema``: dropped fields gone, new ones None."""
    if value is None:
        return None
    out = {}
    for f in schema[type_name].fields:
        v = value.get(f.name)
        target = f.type.target or (f.type.element.target if f.type.element is not None else None)
        if target is not None and v is not None:
            v = (
                [project(x, target, schema) for x in v]
                if f.type.is_collection
                else project(v, target, schema)
            )
        out[f.name] = v
    return out


def check_holds(state: ReadState, v: Version, schema: Schema) -> None:
    assert state.schema == schema and set(state) == set(schema)
    for tid in v.titles:
        view = state["Title"].get(tid)
        assert view is not None
        d = canonical(view.to_dict())
        if d.get("genres") is not None:
            d["genres"] = sorted(d["genres"])
        assert d == project(v.expected_title_dict(tid), "Title", schema)


def evolve(vs: list[Version], new: Schema) -> None:
    """Version 1 with the catalogue schema, then every later version with ``new``."""
    ws = WriteState(SCHEMA)
    vs[0].write(ws)
    first = ws.commit(version=1)
    consumer = ReadState.from_snapshot(first.snapshot())
    consumer["Title"].get(0)  # indexes in use are carried across the change
    consumer["Title"].find("title", "Dark")

    ws = WriteState(new, previous=ws.previous, tag=ws.tag, version=1)
    for k, v in enumerate(vs[1:], start=2):
        v.write(ws)
        cycle = ws.commit(version=k)
        snapshot = ReadState.from_snapshot(cycle.snapshot())
        before, consumer = consumer, consumer.apply_delta(cycle.delta())
        assert consumer.checksum() == snapshot.checksum(), f"version {k}: delta and snapshot differ"
        assert records_equal(consumer, snapshot)
        check_holds(consumer, v, new)
        titles = consumer["Title"]
        for tid in v.titles:
            assert titles.get(tid).id == tid
        assert [t.ordinal for t in titles.find("title", "Dark")] == [
            t.ordinal for t in titles if t.title == "Dark"
        ]

        back = consumer.apply_delta(cycle.reverse_delta())
        assert back.checksum() == before.checksum(), (
            f"version {k}: the reverse delta does not restore {k - 1}"
        )
        assert dump(back) == dump(before)
        assert back.schema == before.schema


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@settings(max_examples=15)
@given(vs=versions(max_versions=3, max_titles=10))
def test_a_delta_across_a_schema_change_reaches_the_new_snapshot_and_back(
    variant: str, vs: list[Version]
) -> None:
    if len(vs) == 1:
        vs = [*vs, vs[0]]  # the same records under the new schema
    evolve(vs, VARIANTS[variant])


# --- the same, by example --------------------------------------------------------------------------------

OLD = Schema.parse("Title @PrimaryKey(id) { long id; string title; int year; }")


def first_version() -> tuple[WriteState, ReadState]:
    ws = WriteState(OLD)
    for i in range(5):
        ws.add({"id": i, "title": f"t{i}", "year": 2000 + i}, "Title")
    return ws, ReadState.from_snapshot(ws.commit(version=1).snapshot())


def test_a_new_field_reads_as_none_on_old_records() -> None:
    ws, consumer = first_version()
    new = Schema.parse("Title @PrimaryKey(id) { long id; string title; int year; string tagline; }")
    ws = WriteState(new, previous=ws.previous, tag=ws.tag, version=1)
    ws.keep_previous()
    ws.delete("Title", 4)
    ws.add({"id": 4, "title": "t4", "year": 2004, "tagline": "new"}, "Title")
    cycle = ws.commit(version=2)
    after = consumer.apply_delta(cycle.delta())
    assert [(t.id, t.tagline) for t in after["Title"]] == [
        (0, None),
        (1, None),
        (2, None),
        (3, None),
        (4, "new"),
    ]
    assert after["Title"].get(0).ordinal == consumer["Title"].get(0).ordinal, "an unchanged record moved"
    assert after.checksum() == ReadState.from_snapshot(cycle.snapshot()).checksum()
    assert after.apply_delta(cycle.reverse_delta()).checksum() == consumer.checksum()


def test_a_removed_field_comes_back_with_the_reverse_delta() -> None:
    ws, consumer = first_version()
    new = Schema.parse("Title @PrimaryKey(id) { long id; string title; }")
    ws = WriteState(new, previous=ws.previous, tag=ws.tag, version=1)
    ws.keep_previous()
    cycle = ws.commit(version=2)
    after = consumer.apply_delta(cycle.delta())
    assert after["Title"].schema.field_names == ["id", "title"]
    assert after.checksum() == ReadState.from_snapshot(cycle.snapshot()).checksum()
    back = after.apply_delta(cycle.reverse_delta())
    assert [t.year for t in back["Title"]] == [2000, 2001, 2002, 2003, 2004]
    assert back.checksum() == consumer.checksum()


def test_records_told_apart_only_by_a_removed_field_become_one() -> None:
    old = Schema.parse("Award { string name; int year; }")
    ws = WriteState(old)
    ws.add_all([{"name": "Oscar", "year": 2001}, {"name": "Oscar", "year": 2002}], "Award")
    consumer = ReadState.from_snapshot(ws.commit(version=1).snapshot())
    ws = WriteState(Schema.parse("Award { string name; }"), previous=ws.previous, tag=ws.tag, version=1)
    ws.add({"name": "Oscar"}, "Award")
    cycle = ws.commit(version=2)
    for state in (consumer.apply_delta(cycle.delta()), ReadState.from_snapshot(cycle.snapshot())):
        assert [a.name for a in state["Award"]] == ["Oscar"], "identical records, two ordinals"
    back = consumer.apply_delta(cycle.delta()).apply_delta(cycle.reverse_delta())
    assert back.checksum() == consumer.checksum()


def test_a_removed_type_comes_back_with_the_reverse_delta() -> None:
    schema = Schema.parse("Title @PrimaryKey(id) { long id; string title; } Tag { string name; }")
    ws = WriteState(schema)
    ws.add({"id": 1, "title": "Dark"}, "Title")
    ws.add({"name": "noir"}, "Tag")
    consumer = ReadState.from_snapshot(ws.commit(version=1).snapshot())
    ws = WriteState(
        Schema.parse("Title @PrimaryKey(id) { long id; string title; }"),
        previous=ws.previous,
        tag=ws.tag,
        version=1,
    )
    ws.add({"id": 1, "title": "Dark"}, "Title")
    cycle = ws.commit(version=2)
    after = consumer.apply_delta(cycle.delta())
    assert "Tag" not in after and list(after) == ["Title"]
    back = after.apply_delta(cycle.reverse_delta())
    assert [t.name for t in back["Tag"]] == ["noir"]
    assert back.checksum() == consumer.checksum()


@pytest.mark.parametrize(
    ("new", "where"),
    [
        ("Title @PrimaryKey(id) { long id; string title; long year; }", "Title.year"),
        ("Title @PrimaryKey(id) { long id; bytes title; int year; }", "Title.title"),
        ("Title @PrimaryKey(id) { long id; string title; list<int> year; }", "Title.year"),
    ],
)
def test_an_incompatible_change_is_refused_naming_the_field(new: str, where: str) -> None:
    _, consumer = first_version()
    with pytest.raises(IncompatibleSchemaError, match=where.replace(".", r"\.")):
        WriteState(Schema.parse(new), previous=consumer.types)


def test_a_changed_primary_key_is_refused() -> None:
    _, consumer = first_version()
    with pytest.raises(IncompatibleSchemaError, match="primary key of Title"):
        WriteState(
            Schema.parse("Title @PrimaryKey(title) { long id; string title; int year; }"),
            previous=consumer.types,
        )
