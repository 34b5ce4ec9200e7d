"""A delta applied to a copy of the old rows (``_patch``) gives the very arrays that laying every column
out anew gives (``apply(..., whole=True)``): over generated catalogues, and in the cases the copy has
of its own — the first and last rows, variable-length fields that grow and shrink, a growing
capacity, end offsets or codes that need another width (the long way then). ``put`` and ``shift``
agree with their numpy twins; the Makefile runs this module again with ``MARROW_PURE=1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from catalog import commit_all, versions
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow.store import ReadState, Schema, WriteState
from marrow.store import _packed as packed_module
from marrow.store._packed import Packed, put, shift
from marrow.store._patch import patch
from marrow.store._typedata import TypeData, TypeDelta, apply
from marrow.store.blob import read_blob
from marrow.store.producer import Incremental
from marrow.store.testing import dump

SCHEMA = Schema.parse(
    """
    Person @PrimaryKey(id) { long id; string name; }
    Show @PrimaryKey(id) {
        long id;
        string name;
        int year;
        bytes poster;
        list<Person> cast;
        map<string, int> extra;
    }
    """
)


def arrays(td: TypeData) -> list[tuple[str, bytes]]:
    """Every array of a type's data, named, as bytes (what the checksum hashes, spelled out)."""
    out = [("populated", td.populated.tobytes()), ("capacity", str(td.capacity).encode())]
    for name, col in sorted(td.columns.items()):
        for part in ("codes", "values"):
            codes = getattr(col, part)
            if codes is not None:
                p = codes.packed
                out.append((f"{name}.{part}", f"{p.bits}:{p.stride}:{p.offset}:{codes.base}".encode()))
                out.append((f"{name}.{part}.array", p.array.tobytes()))
                if codes.table is not None:
                    out.append((f"{name}.{part}.table", codes.table.data.tobytes()))
                    out.append((f"{name}.{part}.table.ends", codes.table.ends.decode().tobytes()))
        if col.ends is not None:
            e = col.ends
            out.append((f"{name}.ends", f"{e.bits}:{e.stride}:{e.offset}".encode() + e.array.tobytes()))
        if col.data is not None:
            out.append((f"{name}.data", col.data.tobytes()))
    return out


def check_both_ways(old: TypeData, delta: TypeDelta) -> bool:
    """Apply ``delta`` both ways; they must agree array for array. True when the copy applied."""
    quick = patch(old, delta)
    whole = apply(old, delta, whole=True)
    if quick is not None:
        assert arrays(quick) == arrays(whole)
        assert quick.count == whole.count
        assert quick.checksum() == whole.checksum()
    return quick is not None


def deltas_of(blob: Any) -> dict[str, TypeDelta]:
    return read_blob(blob).deltas  # type: ignore[no-any-return]


@settings(max_examples=40)
@given(versions())
def test_the_copy_and_the_whole_layout_agree_on_generated_deltas(vs: list[Any]) -> None:
    previous: ReadState | None = None
    for _, cycle, snapshot in commit_all(vs):
        if previous is not None:
            for name, d in deltas_of(cycle.delta()).items():
                if name in previous.types:
                    check_both_ways(previous.types[name], d)
            for name, d in deltas_of(cycle.reverse_delta()).items():
                if name in snapshot.types:
                    check_both_ways(snapshot.types[name], d)
        previous = snapshot


# --- the cases the copy has of its own ----------------------------------------------------------------


def show(i: int, name: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"show {i}" if name is None else name,
        "year": kw.get("year", 2000 + i % 20),
        "poster": kw.get("poster", bytes([i % 256]) * (i % 7)),
        "cast": kw.get("cast", [{"id": i % 5, "name": f"person {i % 5}"}]),
        "extra": kw.get("extra", {"a": i}),
    }


def two_cycles(first: list[dict[str, Any]], edit: Any) -> tuple[ReadState, bytes, bytes, ReadState]:
    """(state 1 loaded from its snapshot, delta 1→2, reverse delta, state 2 from its snapshot)."""
    ws = WriteState(SCHEMA)
    ws.add_all(first, "Show")
    one = ws.commit(version=1)
    ws.keep_previous()
    edit(ws)
    two = ws.commit(version=2)
    delta, back = two.delta(), two.reverse_delta()
    assert delta is not None and back is not None
    return ReadState.from_snapshot(one.snapshot()), delta, back, ReadState.from_snapshot(two.snapshot())


def modify(ws: WriteState, record: dict[str, Any]) -> None:
    Incremental(ws).add_or_modify(record, "Show")


def check_edit(first: list[dict[str, Any]], edit: Any, copied: bool = True) -> None:
    """Both ways agree forward and back; the consumer's state equals the next snapshot; and the copy
    was (or, with ``copied=False``, was not) taken for Show."""
    before, delta, back, after = two_cycles(first, edit)
    d = deltas_of(delta)["Show"]
    assert check_both_ways(before.types["Show"], d) is copied
    for name, td in deltas_of(back).items():
        check_both_ways(after.types[name], td)
    reached = before.apply_delta(delta)
    assert reached.checksum() == after.checksum()
    assert dump(reached) == dump(after)
    assert reached.apply_delta(back).checksum() == before.checksum()


SHOWS = [show(i) for i in range(40)]


@pytest.mark.parametrize("where", [0, 1, 20, 38, 39])
@pytest.mark.parametrize("name", ["", "x", "a much longer name than any other in the column"])
def test_a_row_anywhere_renamed_longer_or_shorter(where: int, name: str) -> None:
    check_edit(SHOWS, lambda ws: modify(ws, show(where, name)))


def test_the_first_and_the_last_but_one_rows_removed() -> None:
    def edit(ws: WriteState) -> None:
        ws.delete("Show", 0)
        ws.delete("Show", 38)

    check_edit(SHOWS, edit)


def test_a_shrinking_capacity_takes_the_long_way() -> None:
    check_edit(SHOWS, lambda ws: ws.delete("Show", 39), False)


def test_many_rows_changed_at_once_with_nulls_and_empty_collections() -> None:
    def edit(ws: WriteState) -> None:
        for i in range(0, 40, 3):
            two = [{"id": 1, "name": "person 1"}, {"id": 2, "name": "person 2"}]
            cast, extra = ([], None) if i % 2 else (two, {"a": i, "b": 1})  # as many elements in all
            modify(ws, {**show(i, "ab" * (i % 4) + "cdefgh"), "poster": None, "cast": cast, "extra": extra})

    check_edit(SHOWS, edit)


def test_new_rows_grow_the_capacity() -> None:
    def edit(ws: WriteState) -> None:
        for i in range(40, 45):
            ws.add(show(i, poster=b""), "Show")
        modify(ws, show(3, "changed"))

    check_edit(SHOWS, edit)


def test_end_offsets_that_need_another_width_take_the_long_way() -> None:
    small = [show(i, "n") for i in range(4)]  # the names' byte pool: 4 bytes, so end offsets are narrow
    check_edit(small, lambda ws: modify(ws, show(2, "a name long enough to need wider offsets" * 10)), False)


def test_an_integer_range_that_widens_takes_the_long_way() -> None:
    check_edit(SHOWS, lambda ws: modify(ws, show(5, year=1_000_000)), False)


def test_a_delta_that_changes_nothing_of_a_type_shares_its_rows() -> None:
    before, delta, _, _ = two_cycles(SHOWS, lambda ws: modify(ws, show(3, "changed")))
    person = deltas_of(delta)["Person"]
    assert person.is_empty
    kept = patch(before.types["Person"], person)
    assert kept is not None
    old_rows = before.types["Person"].columns["id"].codes.packed.array  # type: ignore[union-attr]
    assert kept.columns["id"].codes.packed.array is old_rows  # type: ignore[union-attr]


# --- put and shift: C and numpy agree -----------------------------------------------------------------


def twins() -> list[Any]:
    return [packed_module.speedups, None] if packed_module.speedups is not None else [None]


@pytest.mark.parametrize("accel", twins())
@settings(max_examples=60)
@given(st.data())
def test_put_and_shift_write_only_the_named_codes(accel: Any, data: st.DataObject) -> None:
    bits = data.draw(st.integers(1, 64))
    other = data.draw(st.integers(0, 13))  # the bits of the other fields in each row
    stride, offset = bits + other, data.draw(st.integers(0, other))
    n = data.draw(st.integers(1, 70))
    top = (1 << bits) - 1
    codes = data.draw(st.lists(st.integers(0, top), min_size=n, max_size=n))
    words = np.array(
        data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=1))
        * Packed.words_for(n, bits, stride, offset),
        dtype=np.uint64,
    )  # every other bit set to one pattern: a write must not touch them
    before = words.copy()
    at = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
    new = data.draw(st.lists(st.integers(0, top), min_size=len(at), max_size=len(at)))
    runs = sorted(data.draw(st.lists(st.integers(0, n), min_size=2, max_size=2)))
    amount = data.draw(st.integers(-(2**40), 2**40))
    saved = packed_module.speedups
    packed_module.speedups = accel
    try:
        put(words, np.array(codes, np.uint64), bits, stride, offset)
        view = Packed(words, bits, n, stride, offset)
        every = np.arange(n, dtype=np.uint64)  # read as bit-packed words, whatever the width
        assert view._gather(every).tolist() == codes
        put(words, np.array(new, np.uint64), bits, stride, offset, np.array(at, np.int64))
        expected = list(codes)
        for i, c in zip(at, new, strict=True):
            expected[i] = c
        assert view._gather(every).tolist() == expected
        shift(words, bits, stride, offset, np.array([runs[0]]), np.array([runs[1]]), np.array([amount]))
        for i in range(runs[0], runs[1]):
            expected[i] = (expected[i] + amount) % (1 << bits)
        assert view._gather(every).tolist() == expected
    finally:
        packed_module.speedups = saved
    # the bits of the other fields are untouched
    mask = np.zeros_like(words)
    put(mask, np.full(n, top, np.uint64), bits, stride, offset)
    assert ((words ^ before) & ~mask).tolist() == [0] * len(words)


def test_the_key_index_of_a_type_the_delta_leaves_alone_is_carried_to_the_new_version() -> None:
    before, delta, _, after = two_cycles(SHOWS, lambda ws: modify(ws, show(3, "changed")))
    assert before["Person"].get(2) is not None  # the index is built, so it is carried
    reached = before.apply_delta(delta)
    index = reached["Person"]._pk
    assert index is not None and index.reader is reached["Person"]  # not the old version's reader
    assert [reached["Person"].get_ordinal(i) for i in range(6)] == [
        after["Person"].get_ordinal(i) for i in range(6)
    ]
    assert reached["Person"].get(4).name == "person 4"  # type: ignore[union-attr]
