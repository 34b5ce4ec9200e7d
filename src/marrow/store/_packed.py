"""Packed unsigned integers: n codes of ``bits`` bits each, in one numpy array.

Two layouts, chosen per array by :func:`choose_layout`:

* *aligned*: ``bits`` is 8, 16, 32 or 64 and the array has that dtype — a read is one index;
* *bit-packed*: codes are laid end to end in little-endian uint64 words (a code may straddle two
  words); one spare word at the end lets every read fetch two words without a bounds check.

The all-ones code (``2**bits - 1``) is the null marker wherever a column needs one. Arrays are never
modified after construction: a new version builds new arrays, so readers of the old one are safe.
"""

from __future__ import annotations

import numpy as np

from marrow.store._accel import speedups

ALIGNED_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}

#: a bit-packed layout is used when the aligned one would cost more than this many times the bits
ALIGN_SLACK = 1.3

_CHUNK = 1 << 20  # codes per vectorised step, to bound temporary memory


def bits_for(max_code: int) -> int:
    """Bits needed to hold codes 0..max_code (at least 1)."""
    return max(1, int(max_code).bit_length())


def choose_layout(bits: int) -> int:
    """The stored width for codes that need ``bits`` bits: an aligned width when it wastes little."""
    for width in (8, 16, 32, 64):
        if width >= bits:
            return width if width <= bits * ALIGN_SLACK else bits
    raise ValueError(f"codes of {bits} bits do not fit in 64")


class Packed:
    """An immutable array of ``n`` unsigned codes of ``bits`` bits.

    Code ``i`` starts at bit ``i * stride + offset`` of ``array``. A packed array of its own has
    ``stride == bits`` and ``offset == 0``; several fields of a type may share one array of *rows*
    (``stride`` = the row's width, ``offset`` = the field's place in the row), so that one record's
    fixed-width fields sit together in memory and a read of several touches one cache line.
    """

    __slots__ = ("_array", "_codes", "bits", "n", "offset", "stride")

    def __init__(self, array: np.ndarray | None, bits: int, n: int, stride: int = 0, offset: int = 0):
        self._array = array
        self._codes: np.ndarray | None = None
        self.bits = bits
        self.n = n
        self.stride = stride or bits
        self.offset = offset

    @property
    def array(self) -> np.ndarray:
        """The packed array. :meth:`encode` packs lazily: codes that only pass through (into the
        rows of a new version, say) are never packed on their own."""
        if self._array is None:
            assert self._codes is not None
            self._array = _pack(self._codes, self.bits)
            self._codes = None
        return self._array

    @property
    def aligned(self) -> bool:
        return self.bits in ALIGNED_DTYPES and self.stride == self.bits and self.offset == 0

    @property
    def strided(self) -> bool:
        """True when this array shares its words with other fields (a row layout)."""
        return self.stride != self.bits or self.offset != 0

    @property
    def null(self) -> int:
        return (1 << self.bits) - 1

    @property
    def nbytes(self) -> int:
        """Bytes of this field's codes (for a shared row array: its share of the rows)."""
        if self.strided:
            return (self.n * self.bits + 7) // 8
        return int(self.array.nbytes)

    @staticmethod
    def words_for(n: int, bits: int, stride: int = 0, offset: int = 0) -> int:
        """uint64 words that hold n codes, plus the spare word every bit-packed array carries."""
        if n == 0:
            return 1
        return ((n - 1) * (stride or bits) + offset + bits + 63) // 64 + 1

    def fits(self) -> bool:
        """Whether the array is large enough for every code (checked before a blob's arrays are used)."""
        if self.aligned:
            return len(self.array) >= self.n and self.array.dtype == np.dtype(ALIGNED_DTYPES[self.bits])
        return self.array.dtype == np.dtype(np.uint64) and len(self.array) >= self.words_for(
            self.n, self.bits, self.stride, self.offset
        )

    @classmethod
    def encode(cls, codes: np.ndarray, bits: int) -> Packed:
        """``codes`` (non-negative integers; the caller hands them over) in ``bits`` bits each."""
        p = cls(None, bits, len(codes))
        held = np.asarray(codes, dtype=np.uint64)
        held.setflags(write=False)
        p._codes = held
        return p

    @classmethod
    def nulls(cls, n: int, bits: int) -> Packed:
        """``n`` null codes (all ones)."""
        return cls.encode(np.full(n, (1 << bits) - 1, dtype=np.uint64), bits)

    def decode(self) -> np.ndarray:
        """All codes, as a uint64 array (read-only when they are the codes :meth:`encode` was given)."""
        if self._codes is not None:
            return self._codes
        if self.aligned:
            return self.array.astype(np.uint64)
        out = np.empty(self.n, dtype=np.uint64)
        if speedups is not None:
            speedups.unpack(self.array, self.bits, self.n, out, self.stride, self.offset)
            return out
        for start in range(0, self.n, _CHUNK):
            idx = np.arange(start, min(start + _CHUNK, self.n), dtype=np.uint64)
            out[start : start + len(idx)] = self._gather(idx)
        return out

    def gather(self, index: np.ndarray) -> np.ndarray:
        """Codes at the given positions, as a uint64 array (vectorised)."""
        index = np.asarray(index, dtype=np.uint64)
        if self._codes is not None:
            return self._codes[index]
        if self.aligned:
            return self.array[index].astype(np.uint64)
        return self._gather(index)

    def _gather(self, index: np.ndarray) -> np.ndarray:
        pos = index * np.uint64(self.stride) + np.uint64(self.offset)
        word = pos >> np.uint64(6)
        shift = pos & np.uint64(63)
        lo = self.array[word] >> shift
        # (x << 1) << (63 - s) is x << (64 - s) without the undefined shift by 64 when s == 0
        hi = (self.array[word + np.uint64(1)] << np.uint64(1)) << (np.uint64(63) - shift)
        return (lo | hi) & np.uint64((1 << self.bits) - 1)

    def get(self, i: int) -> int:
        """One code (scalar path; views use faster closures over the raw buffer)."""
        if self.aligned:
            return int(self.array[i])
        bit = i * self.stride + self.offset
        w, s = bit >> 6, bit & 63
        v = int(self.array[w]) >> s
        if s + self.bits > 64:
            v |= int(self.array[w + 1]) << (64 - s)
        return v & ((1 << self.bits) - 1)

    def with_codes(self, index: np.ndarray, codes: np.ndarray) -> Packed:
        """A copy with the codes at ``index`` replaced (same bits, same length)."""
        if len(index) == 0:
            return self
        if self.strided:  # a field of shared rows: this version's column gets an array of its own
            codes_all = self.decode().copy()
            codes_all[np.asarray(index, dtype=np.int64)] = codes
            return Packed.encode(codes_all, self.bits)
        if self.aligned:
            arr = self.array.copy()
            arr[index] = codes
            return Packed(arr, self.bits, self.n)
        words = self.array.copy()
        put(words, codes, self.bits, self.bits, 0, np.asarray(index, dtype=np.int64))
        return Packed(words, self.bits, self.n)


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    n = len(codes)
    if bits in ALIGNED_DTYPES:
        return np.ascontiguousarray(codes, dtype=ALIGNED_DTYPES[bits])
    words = np.zeros(Packed.words_for(n, bits), dtype=np.uint64)
    if speedups is not None:
        speedups.pack(np.ascontiguousarray(codes, dtype=np.uint64), bits, words)
        return words
    for start in range(0, n, _CHUNK):  # each chunk ORs into the words it touches
        _pack_into(words, codes[start : start + _CHUNK], bits, start)
    return words


def pack_rows(words: np.ndarray, codes: np.ndarray, bits: int, stride: int, offset: int) -> None:
    """OR codes into shared rows: code i at bit i * stride + offset of ``words`` (zeroed there)."""
    codes = np.ascontiguousarray(codes, dtype=np.uint64)
    if speedups is not None:
        speedups.pack(codes, bits, words, stride, offset)
        return
    for start in range(0, len(codes), _CHUNK):
        _pack_into(words, codes[start : start + _CHUNK], bits, start, stride, offset)


def put(
    words: np.ndarray,
    codes: np.ndarray,
    bits: int,
    stride: int,
    offset: int,
    index: np.ndarray | None = None,
) -> None:
    """Overwrite codes in bit-packed words (a new version's copy, before anyone reads it): code k at
    position ``index[k]``, or at position k when ``index`` is None; each code's bits are cleared first."""
    codes = np.ascontiguousarray(codes, dtype=np.uint64)
    if index is not None:
        index = np.ascontiguousarray(index, dtype=np.int64)
    if speedups is not None:
        speedups.put(words, codes, bits, stride, offset, index)
        return
    at = np.arange(len(codes), dtype=np.uint64) if index is None else index.astype(np.uint64)
    pos = at * np.uint64(stride) + np.uint64(offset)
    word = pos >> np.uint64(6)
    shift = pos & np.uint64(63)
    mask = np.uint64((1 << bits) - 1)
    codes = codes & mask
    # codes never share bits but may share a word: clear and set through ufunc.at
    np.bitwise_and.at(words, word, ~(mask << shift))
    np.bitwise_or.at(words, word, codes << shift)
    spill = (shift + np.uint64(bits)) > np.uint64(64)
    if spill.any():
        w2 = word[spill] + np.uint64(1)
        back = np.uint64(64) - shift[spill]
        np.bitwise_and.at(words, w2, ~(mask >> back))
        np.bitwise_or.at(words, w2, codes[spill] >> back)


def shift(
    words: np.ndarray,
    bits: int,
    stride: int,
    offset: int,
    starts: np.ndarray,
    stops: np.ndarray,
    amounts: np.ndarray,
) -> None:
    """Add ``amounts[j]`` (mod 2**bits) to the codes at positions ``starts[j] .. stops[j] - 1`` of
    bit-packed words, in place (a new version's copy, before anyone reads it)."""
    starts, stops, amounts = (np.ascontiguousarray(a, dtype=np.int64) for a in (starts, stops, amounts))
    if speedups is not None:
        speedups.shift(words, bits, stride, offset, starts, stops, amounts)
        return
    at = ranges(starts, stops)
    if not len(at):
        return
    # read as bit-packed words whatever the width (an 8-bit field of its own would read as aligned)
    codes = Packed(words, bits, int(stops.max()), stride, offset)._gather(at.astype(np.uint64))
    add = np.repeat(amounts, stops - starts).astype(np.uint64)  # two's complement: negative subtracts
    put(words, (codes + add) & np.uint64((1 << bits) - 1), bits, stride, offset, at)


def ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, e) for each pair, vectorised."""
    lengths = (ends - starts).astype(np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts.astype(np.int64) - np.cumsum(lengths) + lengths, lengths)
    return np.arange(total, dtype=np.int64) + offsets


def _pack_into(
    words: np.ndarray, codes: np.ndarray, bits: int, first: int, stride: int = 0, offset: int = 0
) -> None:
    n = len(codes)
    if n == 0:
        return
    pos = (np.arange(n, dtype=np.uint64) + np.uint64(first)) * np.uint64(stride or bits) + np.uint64(offset)
    word = pos >> np.uint64(6)
    shift = pos & np.uint64(63)
    lo = codes << shift
    hi = (codes >> np.uint64(1)) >> (np.uint64(63) - shift)  # the part that spills into word + 1
    # word is non-decreasing: OR together the contributions to each word with reduceat.
    starts = np.flatnonzero(np.r_[True, word[1:] != word[:-1]])
    uw = word[starts]
    words[uw] |= np.bitwise_or.reduceat(lo, starts)
    words[uw + np.uint64(1)] |= np.bitwise_or.reduceat(hi, starts)
