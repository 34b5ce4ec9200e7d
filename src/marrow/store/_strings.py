"""String compression, one string at a time, with a codec trained per column.

* :class:`Symbols` — a static symbol table, after FSST (Boncz, Neumann, Leis, VLDB 2020): up to 255
  symbols of 1 to 8 bytes; a compressed string is a sequence of codes, each standing for one symbol,
  with code 255 escaping one literal byte. Decoding is a table look-up and an 8-byte copy per code (in
  C). The codec of short strings: titles, names, slugs, URLs.
* :class:`Deflate` — raw deflate (zlib) with a preset dictionary drawn from the column's values. Its
  back-references reach across a value (a story body repeats an image's path once per device) and into
  the dictionary (what values share: markup, field names, boilerplate); decoding costs microseconds a
  kilobyte, in Python. The codec of long strings (values averaging :data:`LONG_BYTES` or more), when
  it saves more than symbols would.

Every string is compressed on its own, so a read decodes just the string it wants. A column's codec is
trained once, on a sample of its first values, and kept: later patches compress with the same codec,
so compressed bytes can be spliced between versions as they are. A column is compressed only when
training saves at least :data:`MIN_SAVING` of the sample.
"""

from __future__ import annotations

import functools
import random
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from marrow.store._accel import speedups

ESC = 255
MIN_SAVING = 0.2  # compress a column only if this share of the sample's bytes is saved
SAMPLE_BYTES = 1 << 17
MIN_BYTES = 4096  # columns smaller than this stay plain
ROUNDS = 5
LONG_BYTES = 256  # values averaging this many bytes or more may be deflated (bodies, not summaries)
ZDICT_BYTES = 1 << 15  # deflate's window: a preset dictionary longer than this is never reached


@dataclass(frozen=True, eq=False)
class Symbols:
    words: np.ndarray  # uint64[255]: symbol bytes, little-endian, zero padded
    lengths: np.ndarray  # uint8[255]: symbol lengths, 0 for an unused code
    _table: list[bytes] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, symbols: list[bytes]) -> Symbols:
        words = np.zeros(255, dtype=np.uint64)
        lengths = np.zeros(255, dtype=np.uint8)
        for i, s in enumerate(symbols[:255]):
            words[i] = int.from_bytes(s.ljust(8, b"\0"), "little")
            lengths[i] = len(s)
        return cls(words, lengths)

    def table(self) -> list[bytes]:
        if not self._table:
            raw = self.words.astype("<u8").tobytes()
            self._table.extend(raw[8 * i : 8 * i + int(n)] for i, n in enumerate(self.lengths.tolist()))
        return self._table

    @property
    def nbytes(self) -> int:
        return int(self.words.nbytes + self.lengths.nbytes)

    def decode(self, data: Any) -> bytes:
        """One compressed string back to its bytes."""
        if speedups is not None:
            return speedups.fsst_decode(self.words, self.lengths, data)
        table = self.table()
        out = bytearray()
        raw = bytes(data)
        i = 0
        while i < len(raw):
            c = raw[i]
            if c == ESC:
                out.append(raw[i + 1])
                i += 2
            else:
                out += table[c]
                i += 1
        return bytes(out)

    def encode(self, values: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Compress each value; returns (compressed pool, compressed length of each value)."""
        if not values:
            return np.zeros(0, np.uint8), np.zeros(0, np.uint64)
        lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
        ends = np.cumsum(lengths)
        if speedups is not None:
            data, out_ends = speedups.fsst_encode(self.words, self.lengths, b"".join(values), ends)
            new_ends = np.frombuffer(out_ends, dtype=np.int64)[: len(values)]
            return np.frombuffer(data, dtype=np.uint8).copy(), np.diff(new_ends, prepend=0).astype(np.uint64)
        pieces = [self._encode_py(v) for v in values]
        pool = np.frombuffer(b"".join(pieces), dtype=np.uint8).copy() if pieces else np.zeros(0, np.uint8)
        return pool, np.fromiter((len(p) for p in pieces), dtype=np.uint64, count=len(pieces))

    def _encode_py(self, v: bytes) -> bytes:
        codes = {s: i for i, s in reversed(list(enumerate(self.table()))) if s}
        out = bytearray()
        i = 0
        while i < len(v):
            for n in range(min(8, len(v) - i), 0, -1):
                c = codes.get(v[i : i + n])
                if c is not None:
                    out.append(c)
                    i += n
                    break
            else:
                out += bytes((ESC, v[i]))
                i += 1
        return bytes(out)


@dataclass(frozen=True, eq=False)
class Deflate:
    """Raw deflate with a preset dictionary (see the module docstring)."""

    zdict: np.ndarray  # uint8: the preset dictionary, at most ZDICT_BYTES

    @property
    def nbytes(self) -> int:
        return int(self.zdict.nbytes)

    @functools.cached_property
    def _dict(self) -> bytes:
        """The dictionary as zlib takes it (made once: every string read would copy it otherwise)."""
        return self.zdict.tobytes()

    def decode(self, data: Any) -> bytes:
        """One compressed string back to its bytes."""
        inflate = zlib.decompressobj(-15, zdict=self._dict)
        return inflate.decompress(bytes(data)) + inflate.flush()

    def encode(self, values: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Compress each value; returns (compressed pool, compressed length of each value)."""
        zdict = self._dict
        pieces = []
        for v in values:
            deflate = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict)
            pieces.append(deflate.compress(v) + deflate.flush())
        pool = np.frombuffer(b"".join(pieces), dtype=np.uint8).copy() if pieces else np.zeros(0, np.uint8)
        return pool, np.fromiter((len(p) for p in pieces), dtype=np.uint64, count=len(pieces))

    @classmethod
    def trained(cls, sample: list[bytes], limit: int = ZDICT_BYTES) -> Deflate:
        """A dictionary of at most ``limit`` bytes of the sample's values, most common last (deflate
        finds the nearest bytes cheapest): each value once, those that recur nearest the end."""
        counts: dict[bytes, int] = defaultdict(int)
        for v in sample:
            counts[v] += 1
        ordered = sorted(counts, key=lambda v: (counts[v], len(v)))
        picked, size = [], 0
        for v in reversed(ordered):
            if size + len(v) > min(limit, ZDICT_BYTES):
                break
            picked.append(v)
            size += len(v)
        return cls(np.frombuffer(b"".join(reversed(picked)), dtype=np.uint8).copy())


Codec = Symbols | Deflate  #: how a column's strings are compressed


def fingerprint(codec: Codec) -> bytes:
    """The bytes that make ``codec`` what it is (for checksums of a state)."""
    if isinstance(codec, Deflate):
        return b"deflate" + codec.zdict.tobytes()
    return codec.words.tobytes() + codec.lengths.tobytes()


def train(values: list[bytes], deflate: bool = True) -> Codec | None:
    """A codec for these values, or None when compression would not pay (or, for symbols, no C
    encoder). ``deflate=False``: symbols only (a dictionary-mode table, whose entries rows read in
    bulk, stays on the C path)."""
    total = sum(len(v) for v in values)
    if total < MIN_BYTES:
        return None
    sample = values
    if total > SAMPLE_BYTES:
        rng = random.Random(len(values))
        sample = rng.sample(values, max(1, int(len(values) * SAMPLE_BYTES / total)))
    data = b"".join(sample)
    # sizes are projected onto the whole column: a codec's table costs once, its ratio on every value
    best: Codec | None = None
    best_size = (1 - MIN_SAVING) * total
    if speedups is not None:  # training symbols needs the C encoder
        ends = np.cumsum(np.fromiter((len(v) for v in sample), dtype=np.int64, count=len(sample)))
        symbols: list[bytes] = []
        for _ in range(ROUNDS):
            symbols = _round(symbols, data, ends)
        table = Symbols.of(symbols)
        packed, _ = speedups.fsst_encode(table.words, table.lengths, data, ends)
        size = len(packed) / len(data) * total + table.nbytes
        if size < best_size:
            best, best_size = table, size
    if deflate and total >= LONG_BYTES * len(values) and len(sample) >= 2:
        half = len(sample) // 2  # trained on one half, measured on the other: no flattering itself
        deflated = Deflate.trained(sample[:half], total // 8)  # a dictionary worth its bytes
        held_out = sample[half:]
        ratio = int(deflated.encode(held_out)[1].sum()) / sum(len(v) for v in held_out)
        if ratio * total + deflated.nbytes < best_size:
            best = deflated
    return best


def _round(symbols: list[bytes], data: bytes, ends: np.ndarray) -> list[bytes]:
    """One training round: compress with the current symbols, then keep the 255 symbols (current
    symbols, literal bytes and pairs of consecutive ones) that would have saved the most bytes."""
    table = Symbols.of(symbols)
    raw, token_ends = speedups.fsst_encode(table.words, table.lengths, data, ends, True)
    tokens = np.frombuffer(raw, dtype=np.uint16).astype(np.int64)
    if not len(tokens):
        return symbols
    starts = np.frombuffer(token_ends, dtype=np.int64)[:-1]
    follows = np.ones(len(tokens), dtype=bool)  # token i continues the string of token i - 1
    follows[0] = False
    follows[starts[starts < len(tokens)]] = False
    singles = np.bincount(tokens, minlength=512)
    pair_ids = tokens[:-1][follows[1:]] * 512 + tokens[1:][follows[1:]]
    pairs = np.bincount(pair_ids, minlength=512 * 512)
    names = [*(symbols + [b""] * (256 - len(symbols)))[:256], *(bytes((b,)) for b in range(256))]
    gain: dict[bytes, int] = defaultdict(int)
    for t in np.flatnonzero(singles).tolist():
        s = names[t]
        if s:
            gain[s] += int(singles[t]) * len(s)
    for pid in np.flatnonzero(pairs).tolist():
        s = names[pid >> 9] + names[pid & 511]
        if len(s) <= 8:
            gain[s] += int(pairs[pid]) * len(s)
    ranked = sorted(gain.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))
    return [s for s, _ in ranked[:255]]
