"""Round-trip properties of the store over generated catalogues and their successive versions.

* written → snapshot → loaded equals what was written;
* state + delta equals the next snapshot (checksum and records); delta then reverse delta is a no-op;
* ordinals: identical records share one; unchanged records keep theirs; freed ones are reused only
  in a later cycle;
* bulk reads equal view reads;
* primary-key, hash and prefix indexes agree with a scan after every delta, whether they were built
  before the delta (and carried across it) or are built fresh after it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from catalog import SCHEMA, Version, commit_all, state_keys, versions
from hypothesis import given, settings

from marrow.store import ReadState, RecordView, Schema, TypeReader, WriteState
from marrow.store.testing import canonical, dump, records_equal, round_trip_delta, round_trip_snapshot

# --- (a) snapshot round trip ---------------------------------------------------------------------------


def view_dict(view: RecordView) -> dict[str, Any]:
    """``view.to_dict()`` in canonical form, sets sorted as in :meth:`Version.expected_title_dict`."""
    d = view.to_dict()
    if "genres" in d and d["genres"] is not None:
        d["genres"] = sorted(d["genres"])
    return canonical(d)  # type: ignore[no-any-return]


def check_holds(state: ReadState, v: Version) -> None:
    """``state`` holds exactly the records of ``v``, each once, read by key, by view and in bulk."""
    expected = v.keys()
    found = state_keys(state)
    for name in ("Person", "Award", "Title"):
        assert set(found[name].values()) == expected[name], name
        assert len(state[name]) == len(expected[name]), f"{name}: a record is stored more than once"
    titles, persons = state["Title"], state["Person"]
    for tid in v.titles:
        view = titles.get(tid)
        assert view is not None, f"Title {tid} is missing"
        assert view_dict(view) == v.expected_title_dict(tid)
    for pid in v.person_ids():
        view = persons.get(pid)
        assert view is not None, f"Person {pid} is missing"
        assert view.to_dict() == v.persons[pid]


@settings(max_examples=30)
@given(versions(max_versions=1))
def test_round_trip_snapshot_holds_the_written_records(vs: list[Version]) -> None:
    v = vs[0]
    check_holds(round_trip_snapshot(SCHEMA, v.by_type()), v)


@settings(max_examples=20)
@given(versions())
def test_every_snapshot_of_a_producer_holds_its_cycle_records(vs: list[Version]) -> None:
    for k, _, state in commit_all(vs):
        check_holds(state, vs[k])
        assert state.version == k


# --- (b) delta = next snapshot, (c) reverse delta undoes the delta ------------------------------------


@settings(max_examples=30)
@given(versions())
def test_delta_leads_to_the_next_snapshot_and_reverse_delta_back(vs: list[Version]) -> None:
    consumer: ReadState | None = None
    for k, cycle, snapshot in commit_all(vs):
        if consumer is None:
            assert cycle.delta() is None and cycle.reverse_delta() is None
            consumer = snapshot
            continue
        before, before_checksum = consumer, consumer.checksum()
        consumer = before.apply_delta(cycle.delta())
        assert consumer.checksum() == snapshot.checksum(), f"version {k}: delta and snapshot differ"
        assert dump(consumer) == dump(snapshot)
        assert consumer.version == k
        back = consumer.apply_delta(cycle.reverse_delta())
        assert back.checksum() == before.checksum(), f"version {k}: reverse delta does not restore {k - 1}"
        assert dump(back) == dump(before)
        assert back.version == k - 1
        # A delta makes a new state and leaves the one it was applied to as it was.
        assert before.checksum() == before_checksum
        check_holds(before, vs[k - 1])


@settings(max_examples=20)
@given(versions(max_versions=2))
def test_round_trip_delta_helper(vs: list[Version]) -> None:
    after = vs[-1]
    via_delta, via_snapshot = round_trip_delta(vs[0].by_type(), after.by_type(), SCHEMA)
    assert via_delta.checksum() == via_snapshot.checksum()
    assert records_equal(via_delta, via_snapshot)
    check_holds(via_delta, after)


# --- (d) ordinals -------------------------------------------------------------------------------------


@settings(max_examples=30)
@given(versions(max_versions=5))
def test_ordinals_are_shared_kept_and_reused_only_in_a_later_cycle(vs: list[Version]) -> None:
    previous: ReadState | None = None
    for _, _, state in commit_all(vs):
        keys = state_keys(state)
        for name, by_ordinal in keys.items():
            assert len(set(by_ordinal.values())) == len(by_ordinal), f"{name}: equal records, two ordinals"
        if previous is not None:
            old_keys = state_keys(previous)
            for name, by_ordinal in keys.items():
                old = {key: o for o, key in old_keys[name].items()}
                old_live = set(old.values())
                capacity = previous.types[name].capacity
                holes = sorted(set(range(capacity)) - old_live)
                fresh = []
                for o, key in by_ordinal.items():
                    if key in old:
                        assert o == old[key], f"{name} {key}: unchanged, but moved from {old[key]} to {o}"
                    else:
                        assert o not in old_live, (
                            f"{name}: ordinal {o} was freed and reused in the same cycle"
                        )
                        fresh.append(o)
                # New records fill the holes left by earlier removals before growing past the end.
                in_holes = [o for o in fresh if o < capacity]
                assert len(in_holes) == min(len(fresh), len(holes)), (
                    f"{name}: {len(fresh)} new records took {len(in_holes)} of the free ordinals {holes}"
                )
        previous = state


def test_identical_records_share_an_ordinal() -> None:
    ws = WriteState(SCHEMA)
    oscar = {"name": "Oscar", "year": 2001}
    first = ws.add(dict(oscar), "Award")
    assert ws.add(dict(oscar), "Award") == first
    assert ws.add({"name": "Oscar", "year": 2002}, "Award") != first
    ann = {"id": 1, "name": "Ann", "photo": None}
    t = ws.add({"id": 7, "cast": [ann, dict(ann)], "awards": [oscar, oscar]}, "Title")
    assert ws.add({"id": 7, "cast": [dict(ann), ann], "awards": [oscar, dict(oscar)]}, "Title") == t
    state = ReadState.from_snapshot(ws.commit().snapshot())
    assert len(state["Award"]) == 2 and len(state["Person"]) == 1 and len(state["Title"]) == 1
    cast = state["Title"].get(7).cast
    assert [p.ordinal for p in cast] == [cast[0].ordinal] * 2


# --- (e) bulk reads equal view reads --------------------------------------------------------------------

NUMERIC = {"Person": ["id"], "Award": ["year"], "Title": ["id", "year", "score", "rating"]}


def as_read(v: Any) -> Any:
    """A view-read value as :meth:`TypeReader.read` gives it: references as ordinals."""
    if isinstance(v, RecordView):
        return v.ordinal
    if isinstance(v, list):
        return [as_read(x) for x in v]
    return v


def check_bulk(reader: TypeReader) -> None:
    ords = reader.ordinals()
    # Any order, with repeats.
    probe = np.concatenate([ords, ords[::-1], ords[: len(ords) // 2]]).astype(np.int64)
    fields = reader.schema.field_names
    by_view = {f: [canonical(as_read(getattr(reader.view(int(o)), f))) for o in probe] for f in fields}
    bulk = reader.read(probe)
    assert set(bulk) == set(fields)
    for f in fields:
        assert canonical(bulk[f]) == by_view[f], f"{reader.name}.{f}"
    some = fields[::-2]
    chosen = reader.read(probe, some)
    assert list(chosen) == some
    assert all(canonical(chosen[f]) == by_view[f] for f in some)
    rows = reader.rows(probe, fields)
    assert [canonical(list(r)) for r in rows] == [[by_view[f][i] for f in fields] for i in range(len(probe))]
    for f in NUMERIC[reader.name]:
        kind = reader.schema.field(f).type.kind
        for arr, at in ((reader.array(f), ords), (reader.array(f, probe), probe)):
            assert len(arr) == len(at)
            assert (
                arr.dtype
                == {"int": np.int64, "long": np.int64, "float": np.float32, "double": np.float64}[kind]
            )
            for x, o in zip(arr.tolist(), at.tolist(), strict=True):
                want = getattr(reader.view(o), f)
                if want is not None:
                    assert [canonical(x)] == [canonical(want)], (
                        f"{reader.name}.{f} at {o}: array {x}, view {want}"
                    )


@settings(max_examples=25)
@given(versions())
def test_bulk_reads_equal_view_reads(vs: list[Version]) -> None:
    consumer: ReadState | None = None
    for _, cycle, snapshot in commit_all(vs):
        consumer = snapshot if consumer is None else consumer.apply_delta(cycle.delta())
        for state in (snapshot, consumer):
            for name in state:
                check_bulk(state[name])


# --- (f) primary keys, (g) hash and prefix indexes, after every delta -----------------------------------
#
# Each check returns the answers it saw, so that a state whose indexes were carried across deltas can be
# compared with one that built them afresh: an index must not remember how it was made.

Answers = dict[tuple[Any, ...], Any]


def check_primary_keys(state: ReadState, v: Version, absent: set[int]) -> Answers:
    answers: Answers = {}
    for name, present in (("Title", set(v.titles)), ("Person", v.person_ids())):
        reader = state[name]
        gone = sorted(absent - present)
        for key in present:
            view = reader.get(key)
            assert view is not None and view.id == key, f"{name}.get({key})"
            assert reader.get_ordinal(key) == view.ordinal
            answers[name, "get", key] = view.ordinal
        for key in gone:
            assert reader.get(key) is None, f"{name}.get({key}) finds a record that is not there"
            assert reader.get_ordinal(key) == -1
        keys = sorted(present) + gone
        found = reader.get_many(keys)
        assert found.tolist() == [reader.get_ordinal(k) for k in keys], f"{name}.get_many"
    return answers


def scan(ords: list[int], column: list[Any], collection: bool, value: Any) -> list[int]:
    """Ordinals whose value in ``column`` (read in bulk, references as ordinals) is or holds ``value``."""
    probe = value.ordinal if isinstance(value, RecordView) else value
    return [
        o
        for o, v in zip(ords, column, strict=True)
        if v is not None and (probe in v if collection else v == probe)
    ]


FIND = {
    "Title": ["year", "title", "kids", "score", "director", "cast", "genres"],
    "Person": ["id", "name", "photo"],
}
EXTRA_PROBES: dict[str, list[Any]] = {
    "string": ["", "absent"],
    "bytes": [b"", b"absent"],
    "int": [0, 123456789],
    "long": [0, -(2**63)],
    "boolean": [True, False],
    "double": [0.0, math.inf],
}


def check_find(state: ReadState) -> Answers:
    answers: Answers = {}
    persons = list(state["Person"])
    for name, fields in FIND.items():
        reader = state[name]
        for field in fields:
            ftype = reader.schema.field(field).type
            element = ftype.element if ftype.is_collection else ftype
            assert element is not None
            ords = reader.ordinals().tolist()
            column = reader.read(ords, [field])[field]
            if element.kind == "ref":
                probes: list[Any] = [*persons, *(p.ordinal for p in persons), 10**6]
            else:
                probes = [x for v in column if v is not None for x in (v if ftype.is_collection else [v])]
                probes += EXTRA_PROBES.get(element.kind, [])
            for value in probes:
                got = [view.ordinal for view in reader.find(field, value)]
                assert got == scan(ords, column, ftype.is_collection, value), (
                    f"{name}.find({field!r}, {value!r})"
                )
                answers[name, "find", field, repr(value)] = got
    return answers


def matching_terms(value: str | None, prefix: bytes, words: bool) -> list[bytes]:
    if value is None:
        return []
    folded = value.casefold()
    terms = {t.encode() for t in (folded.split() if words else [folded])}
    return [t for t in terms if t.startswith(prefix)]


def check_complete(state: ReadState) -> Answers:
    """``complete`` gives every record with a matching term, once, those whose shortest matching term
    is shorter first; a limit keeps the head of that list."""
    answers: Answers = {}
    for name, field in (("Title", "title"), ("Person", "name")):
        reader = state[name]
        values = {
            o: v
            for o, v in zip(
                reader.ordinals().tolist(), reader.read(reader.ordinals(), [field])[field], strict=True
            )
        }
        prefixes = {"", "zz-absent", "D", "the d", "STRA"}
        for v in values.values():
            for word in [v, *v.split()] if v is not None else []:
                prefixes.update({word[:1], word[:2], word.upper()[:3], word})
        chosen = sorted(prefixes)
        chosen = chosen[:: max(1, len(chosen) // 16)]  # a spread of them keeps the test quick
        for words in (True, False):
            for prefix in chosen:
                where = f"{name}.complete({field!r}, {prefix!r}, words={words})"
                p = prefix.casefold().encode()
                shortest = {
                    o: min(len(t) for t in terms)
                    for o, v in values.items()
                    if (terms := matching_terms(v, p, words))
                }
                got = [view.ordinal for view in reader.complete(field, prefix, limit=10**6, words=words)]
                assert sorted(got) == sorted(shortest), where
                assert [shortest[o] for o in got] == sorted(shortest.values()), (
                    f"{where}: shorter terms first"
                )
                top = [view.ordinal for view in reader.complete(field, prefix, limit=2, words=words)]
                assert top == got[:2], where
                answers[name, "complete", field, prefix, words] = got
    return answers


def check_indexes(state: ReadState, v: Version, absent: set[int]) -> Answers:
    return {**check_primary_keys(state, v, absent), **check_find(state), **check_complete(state)}


def assert_same_answers(carried: Answers, fresh: Answers) -> None:
    assert carried.keys() == fresh.keys()
    differ = {q: (carried[q], fresh[q]) for q in carried if carried[q] != fresh[q]}
    assert not differ, f"indexes carried across a delta answer unlike fresh ones (carried, fresh): {differ}"


@settings(max_examples=30)
@given(versions(max_titles=12))
def test_indexes_are_right_after_every_delta_whether_carried_or_fresh(vs: list[Version]) -> None:
    every_id = {key for v in vs for key in (*v.titles, *v.persons)} | {-(2**63), 2**63 - 1, 0}
    indexed: ReadState | None = None  # queried at every version, so its indexes are carried
    plain: ReadState | None = None  # never queried
    for k, cycle, snapshot in commit_all(vs):
        if indexed is None or plain is None:
            indexed, plain = snapshot, ReadState.from_snapshot(cycle.snapshot())
            check_indexes(indexed, vs[k], every_id)
            continue
        delta = cycle.delta()
        previous = indexed
        indexed = previous.apply_delta(delta)
        carried = check_indexes(indexed, vs[k], every_id)
        fresh = plain.apply_delta(delta)
        assert_same_answers(carried, check_indexes(fresh, vs[k], every_id))
        plain = plain.apply_delta(delta)
        # Back again: indexes are carried across the reverse delta too.
        back = indexed.apply_delta(cycle.reverse_delta())
        back_fresh = plain.apply_delta(cycle.reverse_delta())
        assert_same_answers(
            check_indexes(back, vs[k - 1], every_id), check_indexes(back_fresh, vs[k - 1], every_id)
        )
        # The older state's indexes still answer for the older version.
        check_primary_keys(previous, vs[k - 1], every_id)
        # A snapshot written from the carried state ships its key indexes; loading adopts them, and
        # they answer like fresh ones, then are carried across the next delta like built ones.
        shipped = ReadState.from_snapshot(indexed.snapshot())
        assert shipped["Title"]._pk is not None and shipped.checksum() == indexed.checksum()
        assert_same_answers(
            check_primary_keys(shipped, vs[k], every_id), check_primary_keys(fresh, vs[k], every_id)
        )
        back_shipped = shipped.apply_delta(cycle.reverse_delta())
        assert_same_answers(
            check_primary_keys(back_shipped, vs[k - 1], every_id),
            check_primary_keys(back_fresh, vs[k - 1], every_id),
        )


# --- cases the properties above once found, kept as examples ---------------------------------------------


def chain(*cycles: list[dict[str, Any]], schema: Schema = SCHEMA) -> list[tuple[ReadState, ReadState]]:
    """Write each list of titles as one cycle; per cycle (state reached by deltas, loaded snapshot),
    checking on the way that every delta leads to its snapshot and every reverse delta back."""
    ws = WriteState(schema)
    out: list[tuple[ReadState, ReadState]] = []
    for k, records in enumerate(cycles):
        ws.add_all(records, "Title")
        cycle = ws.commit(version=k)
        snapshot = ReadState.from_snapshot(cycle.snapshot())
        if not out:
            out.append((snapshot, snapshot))
            continue
        before = out[-1][0]
        after = before.apply_delta(cycle.delta())
        assert after.checksum() == snapshot.checksum() and records_equal(after, snapshot)
        assert before.checksum() == after.apply_delta(cycle.reverse_delta()).checksum()
        out.append((after, snapshot))
    return out


def test_a_type_emptied_then_filled_again() -> None:
    many = [{"id": i, "title": f"t{i % 2}", "genres": ["x", "y"]} for i in range(20)]  # dict-mode strings
    states = chain(many, [], [{"id": 5, "title": "t1", "genres": ["z"]}])
    for state in states[-1]:
        assert [(t.id, t.title, t.genres) for t in state["Title"]] == [(5, "t1", frozenset({"z"}))]


def test_a_boolean_column_of_true_only() -> None:
    (state, _), (after, _) = chain(
        [{"id": 1, "kids": True}], [{"id": 1, "kids": True}, {"id": 2, "kids": True}]
    )
    assert state["Title"].get(1).kids is True
    assert state["Title"].read([0], ["kids"]) == {"kids": [True]}
    assert [t.kids for t in after["Title"]] == [True, True]


def test_a_64_bit_long_column_widens_downwards() -> None:
    states = chain([{"id": 0}, {"id": 2**62}], [{"id": 0}, {"id": 2**62}, {"id": -1}], [{"id": -(2**62)}])
    assert sorted(t.id for t in states[1][0]["Title"]) == [-1, 0, 2**62]
    assert [t.id for t in states[2][1]["Title"]] == [-(2**62)]


def lookups(state: ReadState) -> list[Any]:
    titles = state["Title"]
    return [
        [t.id for t in titles],
        titles.get(1),
        titles.get_ordinal(1),
        titles.get_many([1, 2]).tolist(),
        [t.id for t in titles.find("genres", "x")],
        [t.id for t in titles.find("year", 1)],
        [t.id for t in titles.find("cast", 0)],
        [t.id for t in titles.complete("title", "d")],
    ]


def test_lookups_on_an_empty_type() -> None:
    nothing: list[Any] = [[], None, -1, [-1, -1], [], [], [], []]
    ((empty, _),) = chain([])
    assert lookups(empty) == nothing
    ws = WriteState(SCHEMA)
    ws.add({"id": 1, "title": "Dark", "year": 1, "genres": ["x"], "cast": [{"id": 0}]}, "Title")
    full = ReadState.from_snapshot(ws.commit().snapshot())
    assert lookups(full)[4:] == [[1], [1], [1], [1]]  # indexes built, then carried to the empty state
    assert lookups(full.apply_delta(ws.commit().delta())) == nothing


def test_find_through_a_list_that_holds_a_value_twice() -> None:
    ann = {"id": 7, "name": "Ann"}
    ((state, _),) = chain([{"id": 1, "cast": [ann, ann], "genres": ["x"]}, {"id": 2, "cast": [ann]}])
    assert [t.id for t in state["Title"].find("cast", state["Person"].get(7))] == [1, 2]


def test_complete_answers_the_same_whether_its_index_was_carried_or_built() -> None:
    ws = WriteState(SCHEMA)
    ws.add_all([{"id": i, "title": "Dark"} for i in (1, 2, 3)], "Title")
    ws.commit()
    ws.keep_previous()
    ws.delete("Title", 1)  # frees ordinal 0, for the next cycle
    carried = ReadState.from_snapshot(ws.commit().snapshot())
    carried["Title"].complete("title", "d")
    ws.keep_previous()
    ws.add({"id": 4, "title": "Dark"}, "Title")
    cycle = ws.commit()
    carried = carried.apply_delta(cycle.delta())
    built = ReadState.from_snapshot(cycle.snapshot())
    assert carried["Title"].get(4).ordinal == 0
    for limit in (1, 2, 10):
        got = [t.id for t in carried["Title"].complete("title", "d", limit=limit)]
        assert got == [t.id for t in built["Title"].complete("title", "d", limit=limit)]
