"""Bulk reads agree with record views: ``read`` of every field shape, and ``read_entry`` of a map."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from catalog import SCHEMA, commit_all, versions
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow.errors import NotFoundError
from marrow.store import ReadState, WriteState

FIELDS = ["id", "title", "year", "score", "kids", "genres", "extra"]


def _views(state: ReadState, ords: list[int]) -> list[Any]:
    return [state["Title"][o] for o in ords]


def _same(a: Any, b: Any) -> bool:
    return a == b or (a != a and b != b)  # NaN scores


@settings(max_examples=60)
@given(vs=versions(max_versions=2), data=st.data())
def test_bulk_reads_equal_record_views(vs: Any, data: st.DataObject) -> None:
    for _, _, state in commit_all(vs):
        titles = state["Title"]
        ords = titles.ordinals().tolist()
        if not ords:
            continue
        chosen = data.draw(st.lists(st.sampled_from(ords), max_size=30))
        cols = titles.read(np.asarray(chosen, dtype=np.int64), FIELDS)
        for i, view in enumerate(_views(state, chosen)):
            for f in FIELDS:
                assert _same(cols[f][i], getattr(view, f)), f
        present = sorted({k for v in _views(state, ords) for k in (v.extra or {})})
        key = data.draw(st.sampled_from(["", "a", "missing", *present]))
        entries = titles.read_entry("extra", key, np.asarray(chosen, dtype=np.int64))
        assert entries == [(view.extra or {}).get(key) for view in _views(state, chosen)]


def test_read_entry_refuses_a_field_that_is_not_a_map() -> None:
    ws = WriteState(SCHEMA)
    ws.add({"id": 1, "title": "Dark", "extra": {"a": 1}}, "Title")
    titles = ReadState.from_snapshot(ws.commit(version=1).snapshot())["Title"]
    assert titles.read_entry("extra", "a", [0]) == [1]
    with pytest.raises(NotFoundError, match=r"Title\.genres is set<string>; read_entry reads map fields"):
        titles.read_entry("genres", "drama", [0])
