"""The cursor's record of titles already shown: round trips, and damaged ones are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marrow.errors import RequestError
from marrow.pages.fragments import Cursor


def cursor(seen: bytes) -> Cursor:
    return Cursor("home", None, None, 1, "t", None, 1, 0.0, seen)


@given(st.integers(1, 200_000).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))))
def test_shown_titles_round_trip(case: tuple[int, set[int]]) -> None:
    capacity, ordinals = case
    shown = np.zeros(capacity, dtype=bool)
    shown[list(ordinals)] = True
    back = cursor(Cursor.pack_shown(shown)).shown(capacity)
    assert np.array_equal(back, shown)


def test_gaps_wider_than_sixteen_bits_take_four_bytes() -> None:
    shown = np.zeros(100_000, dtype=bool)
    shown[[3, 70_000]] = True
    packed = Cursor.pack_shown(shown)
    assert packed[0] == 4 and len(packed) == 1 + 2 * 4
    assert np.flatnonzero(cursor(packed).shown(100_000)).tolist() == [3, 70_000]


@pytest.mark.parametrize(
    ("seen", "why"),
    [
        (b"", "not a list of gaps"),
        (b"\x03\x00\x00\x00", "not a list of gaps"),  # no such width
        (b"\x02\x01\x00\x01", "not a list of gaps"),  # a gap cut short
        (b"\x02\x01\x00\x00\x00", "listed twice"),
        (b"\x02\x0a\x00", "not this version's"),  # ordinal 10 of a version with 10 titles
    ],
)
def test_damaged_seen_titles_are_refused(seen: bytes, why: str) -> None:
    with pytest.raises(RequestError, match=why):
        cursor(seen).shown(10)
