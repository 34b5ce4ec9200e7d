"""Packed unsigned codes: every width from 1 to 64 bits reads back what was packed, by every path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow.store._packed import ALIGNED_DTYPES, Packed, bits_for, choose_layout


def reference_words(codes: list[int], bits: int) -> list[int]:
    """The bit-packed layout of docs/format.md, built with Python integers: codes end to end from
    bit 0 of word 0, little-endian uint64 words, one spare word at the end."""
    whole = 0
    for i, c in enumerate(codes):
        whole |= c << (i * bits)
    n_words = Packed.words_for(len(codes), bits)
    return [(whole >> (64 * w)) & (2**64 - 1) for w in range(n_words)]


@st.composite
def packed_case(draw: st.DrawFn, bits: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """Codes; positions to gather (any order, repeats); positions to replace (distinct) and their codes."""
    top = 2**bits - 1
    code = st.one_of(st.integers(0, top), st.sampled_from([0, 1, top, top >> 1]))
    codes = draw(st.lists(code, max_size=3 * 64 + 5))
    n = len(codes)
    if n == 0:
        return codes, [], [], []
    gather = draw(st.lists(st.integers(0, n - 1), max_size=40))
    replace = draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
    new = draw(st.lists(code, min_size=len(replace), max_size=len(replace)))
    return codes, gather, replace, new


@pytest.mark.parametrize("bits", range(1, 65))
@settings(max_examples=15)
@given(data=st.data())
def test_packed_round_trip(bits: int, data: st.DataObject) -> None:
    codes, gather, replace, new = data.draw(packed_case(bits))
    p = Packed.encode(np.array(codes, dtype=np.uint64), bits)
    assert (p.n, p.bits) == (len(codes), bits)
    assert p.aligned == (bits in ALIGNED_DTYPES)
    assert p.null == 2**bits - 1
    if p.aligned:
        assert p.array.dtype == ALIGNED_DTYPES[bits] and p.array.tolist() == codes
    else:
        assert p.array.dtype == np.uint64
        assert p.array.tolist() == reference_words(codes, bits), "layout differs from the format"

    decoded = p.decode()
    assert decoded.dtype == np.uint64 and decoded.tolist() == codes
    assert [p.get(i) for i in range(len(codes))] == codes
    assert p.gather(np.array(gather, dtype=np.int64)).tolist() == [codes[i] for i in gather]

    before = p.array.copy()
    q = p.with_codes(np.array(replace, dtype=np.int64), np.array(new, dtype=np.uint64))
    expected = list(codes)
    for i, c in zip(replace, new, strict=True):
        expected[i] = c
    assert (q.n, q.bits) == (p.n, p.bits)
    assert q.decode().tolist() == expected
    assert [q.get(i) for i in range(len(codes))] == expected
    assert q.gather(np.arange(len(codes))).tolist() == expected
    if not q.aligned:
        assert q.array.tolist() == reference_words(expected, bits)
    assert np.array_equal(p.array, before), "with_codes changed the original"
    assert p.decode().tolist() == codes


@pytest.mark.parametrize("bits", range(1, 65))
def test_nulls_are_all_ones(bits: int) -> None:
    p = Packed.nulls(70, bits)
    assert p.decode().tolist() == [2**bits - 1] * 70
    assert Packed.nulls(0, bits).decode().tolist() == []


def test_bits_for_and_layout() -> None:
    assert [bits_for(m) for m in (0, 1, 2, 3, 255, 256, 2**64 - 1)] == [1, 1, 2, 2, 8, 9, 64]
    for bits in range(1, 65):
        width = choose_layout(bits)
        assert bits <= width <= 64
        assert width == bits or width in ALIGNED_DTYPES
    assert choose_layout(8) == 8 and choose_layout(64) == 64 and choose_layout(3) == 3
    with pytest.raises(ValueError, match="65 bits"):
        choose_layout(65)
