"""String compression with a static symbol table, after FSST (Boncz, Neumann, Leis, VLDB 2020).

A :class:`Symbols` table holds up to 255 symbols of 1 to 8 bytes; a compressed string is a sequence
of codes, each standing for one symbol, with code 255 escaping one literal byte. Every string is
compressed on its own, so a read decodes just the string it wants (in C: a table look-up and an
8-byte copy per code).

A column's table is trained once, on a sample of its first values, and kept: later patches compress
with the same table, so compressed bytes can be spliced between versions as they are. A column is
compressed only when training saves at least :data:`MIN_SAVING` of the sample.
"""

from __future__ import annotations

import random
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


def train(values: list[bytes]) -> Symbols | None:
    """A symbol table for these values, or None when compression would not pay (or no C encoder)."""
    if speedups is None:
        return None  # training needs the C encoder; columns stay plain without it
    total = sum(len(v) for v in values)
    if total < MIN_BYTES:
        return None
    sample = values
    if total > SAMPLE_BYTES:
        rng = random.Random(len(values))
        sample = rng.sample(values, max(1, int(len(values) * SAMPLE_BYTES / total)))
    data = b"".join(sample)
    ends = np.cumsum(np.fromiter((len(v) for v in sample), dtype=np.int64, count=len(sample)))
    symbols: list[bytes] = []
    for _ in range(ROUNDS):
        symbols = _round(symbols, data, ends)
    table = Symbols.of(symbols)
    packed, _ = speedups.fsst_encode(table.words, table.lengths, data, ends)
    if len(packed) > (1 - MIN_SAVING) * len(data):
        return None
    return table


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
