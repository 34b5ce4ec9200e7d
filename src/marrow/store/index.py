"""Indexes over one type of one version: primary key, hash, prefix.

Indexes are built in each process from the state in memory, lazily on first use, and carried across
deltas: a new version's index is made from the old one plus the delta's removed and added ordinals,
without a full rebuild. The one exception: a snapshot may ship the primary-key index of a type keyed
by one integer field (its slots depend only on the keys, not on the process), and loading such a
snapshot adopts it in place (:meth:`PrimaryKeyIndex.adopt`) — so a version mapped from a file needs
no build at all. Other keys hash with Python's per-process ``hash()`` and are always built locally.

* :class:`PrimaryKeyIndex` — unique key → ordinal. Open addressing with linear probing in one uint32
  array (ordinal + 1; 0 empty; all-ones a deleted slot), ~1.4 slots per record. Integer keys hash by
  a multiplicative hash computed the same way in numpy and in Python.
* :class:`HashIndex` — value → ordinals, many-to-many; for a list or set field each element is a key.
  Compressed sparse rows: sorted distinct key hashes, offsets, and ordinals.
* :class:`PrefixIndex` — ordinals sorted by a string field (casefolded), or by each word of it, for
  autocomplete; a prefix query is two binary searches.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from marrow.errors import CorruptBlobError, SchemaError
from marrow.store._accel import ACCELERATED, speedups
from marrow.store._encode import column_values, decode_codes
from marrow.store._packed import Packed, bits_for, choose_layout
from marrow.store._views import code_reader
from marrow.store.schema import FieldType

if TYPE_CHECKING:
    from marrow.store._typedata import TypeDelta
    from marrow.store.read import TypeReader

_GOLD = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1
_EMPTY = 0
_TOMB = 0xFFFFFFFF
_LOAD = 0.7  # records per slot when built
_MAX_FILL = 0.85  # live + deleted slots per slot before a rebuild


def _int_slot(key: int, size: int) -> int:
    return ((((key & _M64) * _GOLD) & _M64) >> 32) * size >> 32


def _int_slots(keys: np.ndarray, size: int) -> np.ndarray:
    h = (keys.astype(np.uint64) * np.uint64(_GOLD)) >> np.uint64(32)
    return ((h * np.uint64(size)) >> np.uint64(32)).astype(np.int64)


def _hash_value(v: Any) -> int:
    """A 64-bit hash of a key value: integers are themselves, anything else Python's hash."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v & _M64
    return hash(v) & _M64


class PrimaryKeyIndex:
    """Unique primary key → ordinal, for one version of one type."""

    def __init__(self, reader: TypeReader, carried: tuple[np.ndarray, int, np.ndarray] | None = None):
        """Build the index of ``reader``'s version; or, with ``carried`` = (the previous version's
        slots with its removals already deleted, their used count, the ordinals to add), finish one
        carried across a delta."""
        self.reader = reader
        schema = reader.schema
        if not schema.primary_key:
            raise SchemaError(f"type {schema.name} has no primary key")
        self.fields = schema.primary_key
        ftypes = [schema.field(k).type for k in self.fields]
        self.int_key = len(ftypes) == 1 and ftypes[0].kind in ("int", "long")
        if self.int_key:
            codes = reader.data.columns[self.fields[0]].codes
            assert codes is not None
            self._code = code_reader(codes.packed)
            self._base = codes.base
            self._null = codes.packed.null
            self.key_of: Callable[[int], Any] = self._int_key_of
        else:
            self.key_of = self._view_key_of
        if carried is None:
            added = reader.data.ordinals()
            slots = np.zeros(max(8, int(len(added) / _LOAD) + 1), dtype=np.uint32)
            self.used = 0
        else:
            slots, self.used, added = carried
        self._insert(slots, added)
        self._freeze(slots)
        self._bind()

    @classmethod
    def adopt(cls, reader: TypeReader, slots: Packed, used: int) -> PrimaryKeyIndex:
        """The index shipped in a snapshot, used in place (no build, no copy).

        Raises CorruptBlobError unless it can be this type's index: an integer key, the slot width
        this version's capacity calls for, more slots than used ones, at least one per record. Slot
        contents are trusted, as every code of a blob that passes its checksum is (format.md §7);
        a probe never reads outside the key column whatever they hold.
        """
        index = cls.__new__(cls)
        index.reader = reader
        index.fields = reader.schema.primary_key
        key = [reader.schema.field(k).type.kind for k in index.fields]
        capacity, count = reader.data.capacity, reader.data.count
        if key not in (["int"], ["long"]):
            raise CorruptBlobError(f"{reader.name}: a primary-key index is shipped only for one integer key")
        if slots.bits != choose_layout(bits_for(capacity + 1)) or not count <= used < slots.n or slots.n < 8:
            raise CorruptBlobError(
                f"{reader.name}: the shipped primary-key index does not fit this version "
                f"({slots.n} slots of {slots.bits} bits, {used} used, {count} records); "
                "republish the snapshot"
            )
        index.int_key = True
        codes = reader.data.columns[index.fields[0]].codes
        assert codes is not None
        index._code, index._base, index._null = code_reader(codes.packed), codes.base, codes.packed.null
        index.key_of = index._int_key_of
        index.used, index.packed, index.size, index.tomb = used, slots, slots.n, slots.null
        index._slot = code_reader(slots)
        index._bind()
        return index

    @property
    def shippable(self) -> bool:
        """Whether a snapshot may carry this index: only integer keys hash the same in every process."""
        return self.int_key

    def _freeze(self, slots: np.ndarray) -> None:
        """Keep the slots bit-packed, in the fewest bits that hold ordinal + 1 and a deleted marker."""
        bits = choose_layout(bits_for(self.reader.data.capacity + 1))
        codes = slots.astype(np.uint64)
        self.tomb = (1 << bits) - 1
        codes[slots == _TOMB] = self.tomb
        self.packed = Packed.encode(codes, bits)
        self.size = len(slots)
        self._slot = code_reader(self.packed)

    def _thaw(self) -> np.ndarray:
        codes = self.packed.decode()
        slots = codes.astype(np.uint32)
        slots[codes == np.uint64(self.tomb)] = _TOMB
        return slots

    def _bind(self) -> None:
        """Point find/get at the C probe when it can serve this key."""
        view = self.reader.View
        if self.int_key and ACCELERATED:
            codes = self.reader.data.columns[self.fields[0]].codes
            assert codes is not None
            p = codes.packed
            s = self.packed
            probe = speedups.IntKeyProbe(
                s.array, s.bits, s.n, p.array, p.bits, p.n, codes.base, p.null, view, p.stride, p.offset
            )
            self.find = probe.find  # type: ignore[method-assign]
            self.get = probe.get  # type: ignore[method-assign]

    def get(self, key: Any) -> Any:
        """The view of the record with this key, or None."""
        o = self.find(key)
        return None if o < 0 else self.reader.View(o)

    def _int_key_of(self, o: int) -> Any:
        c = self._code(o)
        return None if c == self._null else c + self._base

    def _view_key_of(self, o: int) -> Any:
        v = self.reader.view(o)
        values = tuple(getattr(v, f) for f in self.fields)
        return values[0] if len(values) == 1 else values

    # --- building ---------------------------------------------------------------------------------

    def _keys(self, ords: np.ndarray) -> np.ndarray:
        """Hashes (uint64) of the keys of ``ords``."""
        if self.int_key:
            col = self.reader.data.columns[self.fields[0]]
            assert col.codes is not None
            return col.codes.packed.gather(ords) + np.uint64(self._base & _M64)
        return np.fromiter(
            (_hash_value(self.key_of(o)) for o in ords.tolist()), dtype=np.uint64, count=len(ords)
        )

    def _slot_of(self, key: Any) -> int:
        return _int_slot(key if self.int_key else _hash_value(key), self.size)

    def _insert(self, slots: np.ndarray, ords: np.ndarray) -> None:
        if not len(ords):
            return
        size = len(slots)
        pos = _int_slots(self._keys(ords), size)
        pending = np.arange(len(ords))
        while len(pending):
            p = pos[pending]
            cur = slots[p]
            free = (cur == _EMPTY) | (cur == _TOMB)
            fi = np.flatnonzero(free)
            taken, first = np.unique(p[fi], return_index=True)
            winners = pending[fi[first]]
            slots[taken] = (ords[winners] + 1).astype(np.uint32)
            placed = np.zeros(len(pending), dtype=bool)
            placed[fi[first]] = True
            pending = pending[~placed]
            pos[pending] = (pos[pending] + 1) % size
        self.used += len(ords)

    def _remove(self, slots: np.ndarray, ords: np.ndarray, old_keys: np.ndarray) -> None:
        if not len(ords):
            return
        size = len(slots)
        pos = _int_slots(old_keys, size)
        want = (ords + 1).astype(np.uint32)
        pending = np.arange(len(ords))
        for _ in range(size):
            if not len(pending):
                break
            p = pos[pending]
            hit = slots[p] == want[pending]
            slots[p[hit]] = _TOMB
            pending = pending[~hit]
            pos[pending] = (pos[pending] + 1) % size

    def updated(self, reader: TypeReader, delta: TypeDelta) -> PrimaryKeyIndex:
        """The index of the next version, from this one and the delta that leads there."""
        if delta.is_empty and self.int_key and reader.data.capacity == self.reader.data.capacity:
            return PrimaryKeyIndex.adopt(reader, self.packed, self.used)  # the same slots serve it
        live = reader.data.count
        if (self.used + len(delta.added)) > _MAX_FILL * self.size or live > _LOAD * self.size:
            return PrimaryKeyIndex(reader)
        slots = self._thaw()
        self._remove(slots, delta.removed, self._keys(delta.removed))  # keys read from the old version
        return PrimaryKeyIndex(reader, (slots, self.used, delta.added))

    # --- queries ----------------------------------------------------------------------------------

    def find(self, key: Any) -> int:
        """The ordinal of the record with this key, or -1."""
        slot = self._slot
        size, tomb, capacity = self.size, self.tomb, self.reader.data.capacity
        h = self._slot_of(key)
        key_of = self.key_of
        for _ in range(size):  # a built index always has an empty slot; a shipped one is not trusted to
            s = slot(h)
            if s == _EMPTY:
                return -1
            if s != tomb and s <= capacity and key_of(s - 1) == key:
                return s - 1
            h += 1
            if h == size:
                h = 0
        return -1

    def find_many(self, keys: Sequence[Any]) -> np.ndarray:
        """Ordinals (int64, -1 where absent) for many keys at once."""
        if not self.int_key:
            return np.fromiter((self.find(k) for k in keys), dtype=np.int64, count=len(keys))
        q = np.asarray(keys, dtype=np.int64)
        out = np.full(len(q), -1, dtype=np.int64)
        size = self.size
        pos = _int_slots(q.view(np.uint64), size)
        col = self.reader.data.columns[self.fields[0]]
        assert col.codes is not None
        pending = np.arange(len(q))
        base = np.uint64(self._base & _M64)
        capacity = self.reader.data.capacity
        for _ in range(size):  # as in find: bounded even for a shipped index without an empty slot
            if not len(pending):
                break
            s = self.packed.gather(pos[pending]).astype(np.int64)
            empty = s == _EMPTY
            real = ~empty & (s != self.tomb) & (s <= capacity)
            cand = s - 1
            match = np.zeros(len(pending), dtype=bool)
            ri = np.flatnonzero(real)  # read keys only where a slot holds a record
            if len(ri):
                match[ri] = (col.codes.packed.gather(cand[ri]) + base).view(np.int64) == q[pending[ri]]
            out[pending[match]] = cand[match]
            pending = pending[~(match | empty)]
            pos[pending] = (pos[pending] + 1) % size
        return out

    @property
    def nbytes(self) -> int:
        return self.packed.nbytes


class _Postings:
    """Compressed sparse rows: for each key (sorted, distinct) the ordinals that hold it.

    A fresh build lists each key's ordinals in ascending order; after merges they are in no order.
    """

    __slots__ = ("keys", "offsets", "ords")

    def __init__(self, keys: np.ndarray, ords: np.ndarray, presorted: bool = False):
        if not presorted:
            order = np.argsort(keys, kind="stable")
            keys, ords = _distinct(keys[order], ords[order])
        firsts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
        self.keys = keys[firsts]
        self.offsets = np.append(firsts, len(keys)).astype(np.int64)
        self.ords = ords.astype(np.uint32)

    def merged(
        self, removed: np.ndarray, keys: np.ndarray, ords: np.ndarray, remap: np.ndarray | None = None
    ) -> _Postings:
        """These postings less the ``removed`` ordinals, plus new pairs; ``remap`` renumbers old keys
        (it must preserve their order). Costs a few copies of the arrays, not a sort."""
        old_keys = np.repeat(self.keys if remap is None else remap[self.keys], np.diff(self.offsets))
        gone = np.zeros(int(max(self.ords.max(initial=0), removed.max(initial=0))) + 1, dtype=bool)
        gone[removed] = True
        keep = ~gone[self.ords]
        old_keys, old_ords = old_keys[keep], self.ords[keep]
        order = np.argsort(keys, kind="stable")
        keys, ords = _distinct(keys[order], ords[order])
        at = np.searchsorted(old_keys, keys, side="right")
        return _Postings(np.insert(old_keys, at, keys), np.insert(old_ords, at, ords.astype(np.uint32)), True)

    def at(self, i: int) -> np.ndarray:
        return self.ords[self.offsets[i] : self.offsets[i + 1]]

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.offsets.nbytes + self.ords.nbytes)


def _distinct(keys: np.ndarray, ords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs sorted by key (stably, from ordinal order) without repeats: a list that holds a value
    twice gives its record one posting."""
    if len(keys) < 2:
        return keys, ords
    keep = np.r_[True, (keys[1:] != keys[:-1]) | (ords[1:] != ords[:-1])]
    return keys[keep], ords[keep]


def _element_spans(reader: TypeReader, field: str, ords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a list or set field: (element positions, owning ordinal of each)."""
    from marrow.store._columns import _ranges

    col = reader.data.columns[field]
    starts, ends, _ = col.spans()
    s, e = starts[ords], ends[ords]
    return _ranges(s, e), np.repeat(ords, (e - s).astype(np.int64))


class HashIndex:
    """Value → ordinals of the records holding it (for list and set fields: any element)."""

    def __init__(self, reader: TypeReader, field: str, postings: _Postings | None = None):
        self.reader = reader
        self.field = field
        ftype = reader.schema.field(field).type
        if ftype.kind == "map":
            raise SchemaError(
                f"{reader.name}.{field} is a map; a hash index takes scalar, list or set fields"
            )
        self.collection = ftype.is_collection
        element = ftype.element if ftype.is_collection else ftype
        assert element is not None
        self.ftype: FieldType = element
        self.postings = postings if postings is not None else _Postings(*self._pairs(reader.data.ordinals()))
        self._keys = memoryview(self.postings.keys)

    def _pairs(self, ords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(key hash, ordinal) for every non-null value (or element) of the given records."""
        col = self.reader.data.columns[self.field]
        assert self.ftype is not None
        if col.shape == "var":  # direct-mode strings: hash each value
            values = column_values(self.ftype, col, ords)
            keep = [i for i, v in enumerate(values) if v is not None]
            hashes = np.fromiter((_hash_value(values[i]) for i in keep), dtype=np.uint64, count=len(keep))
            return hashes, ords[keep].astype(np.int64)
        assert col.codes is not None
        index, owners = _element_spans(self.reader, self.field, ords) if self.collection else (ords, ords)
        codes = col.codes
        raw = codes.packed.gather(index)
        keep = raw != np.uint64(codes.packed.null)
        raw, owners = raw[keep], owners[keep].astype(np.int64)
        kind = self.ftype.kind
        if kind in ("int", "long"):
            return raw + np.uint64(codes.base & _M64), owners
        if kind == "ref":
            return raw, owners
        if kind in ("string", "bytes"):
            assert codes.table is not None
            distinct = decode_codes(self.ftype, codes, np.arange(len(codes.table), dtype=np.uint64))
            table_hash = np.fromiter((_hash_value(v) for v in distinct), dtype=np.uint64, count=len(distinct))
            return table_hash[raw.astype(np.int64)], owners
        values = decode_codes(self.ftype, codes, raw)
        return np.fromiter((_hash_value(v) for v in values), dtype=np.uint64, count=len(values)), owners

    def updated(self, reader: TypeReader, delta: TypeDelta) -> HashIndex:
        """The index of the next version: this one's pairs less the removed records, plus the added."""
        fresh = HashIndex.__new__(HashIndex)
        fresh.reader, fresh.field, fresh.collection, fresh.ftype = (
            reader,
            self.field,
            self.collection,
            self.ftype,
        )
        postings = self.postings.merged(delta.removed, *fresh._pairs(delta.added))
        return HashIndex(reader, self.field, postings)

    def find(self, value: Any) -> list[int]:
        """Ordinals of the records that hold ``value`` (ascending). A view matches its ordinal."""
        probe = value.ordinal if self.ftype.kind == "ref" and hasattr(value, "ordinal") else value
        h = _hash_value(probe)
        i = bisect.bisect_left(self._keys, h)
        if i == len(self._keys) or self._keys[i] != h:
            return []
        ords: list[int] = sorted(self.postings.at(i).tolist())  # after merges, in no order
        if self.ftype.kind in ("int", "long", "ref"):
            return ords
        return [o for o in ords if self._holds(o, value)]  # hashes of other values may collide

    def _holds(self, o: int, value: Any) -> bool:
        v = getattr(self.reader.view(o), self.field)
        return value in v if self.collection else v == value

    @property
    def nbytes(self) -> int:
        return self.postings.nbytes


class PrefixIndex:
    """Records whose string field — each word of it, or the whole value — starts with a prefix.

    Matching ignores case. Terms (casefolded words or values, UTF-8) sit sorted in one byte pool;
    a query is a binary search over them, then the postings of the matching terms.
    """

    def __init__(self, reader: TypeReader, field: str, words: bool = True):
        ftype = reader.schema.field(field).type
        if ftype.kind != "string":
            raise SchemaError(f"{reader.name}.{field} is {ftype}; a prefix index needs a string field")
        self.reader, self.field, self.words = reader, field, words
        terms, pairs = self._terms(reader.data.ordinals())
        self._set(sorted(set(terms)), terms, pairs)

    def _terms(self, ords: np.ndarray) -> tuple[list[bytes], list[int]]:
        col = self.reader.data.columns[self.field]
        values = column_values(self.reader.schema.field(self.field).type, col, ords)
        terms: list[bytes] = []
        owners: list[int] = []
        for o, v in zip(ords.tolist(), values, strict=True):
            if v is None:
                continue
            folded = v.casefold()
            for t in set(folded.split()) if self.words else (folded,):
                terms.append(t.encode())
                owners.append(o)
        return terms, owners

    def _set(self, vocab: list[bytes], terms: list[bytes], owners: list[int]) -> None:
        lengths = np.fromiter((len(t) for t in vocab), dtype=np.int64, count=len(vocab))
        self.ends = np.cumsum(lengths).astype(np.uint32)
        self.pool = b"".join(vocab)
        position = {t: i for i, t in enumerate(vocab)}
        keys = np.fromiter((position[t] for t in terms), dtype=np.int64, count=len(terms))
        self.postings = _Postings(keys, np.array(owners, dtype=np.int64))

    def _term(self, i: int) -> bytes:
        return self.pool[int(self.ends[i - 1]) if i else 0 : int(self.ends[i])]

    def vocabulary(self) -> list[bytes]:
        return [self._term(i) for i in range(len(self.ends))]

    def find(self, prefix: str, limit: int | None = None) -> list[int]:
        """Ordinals of matching records, each once; records matching shorter terms first."""
        p = prefix.casefold().encode()
        n = len(self.ends)
        lo = bisect.bisect_left(range(n), p, key=self._term)
        hi = bisect.bisect_left(range(n), p + b"\xff", lo, key=self._term)
        out: list[int] = []
        seen: set[int] = set()
        for t in sorted(range(lo, hi), key=lambda i: len(self._term(i))):
            for o in sorted(self.postings.at(t).tolist()):  # the same order however the index was built
                if o not in seen:
                    seen.add(o)
                    out.append(o)
                    if limit is not None and len(out) >= limit:
                        return out
        return out

    def updated(self, reader: TypeReader, delta: TypeDelta) -> PrefixIndex:
        """The next version's index: the vocabulary grows by the new terms, postings are merged."""
        old_vocab = self.vocabulary()
        fresh = PrefixIndex.__new__(PrefixIndex)
        fresh.reader, fresh.field, fresh.words = reader, self.field, self.words
        terms, owners = fresh._terms(delta.added)
        vocab = sorted(set(old_vocab).union(terms))
        position = {t: i for i, t in enumerate(vocab)}
        remap = np.fromiter((position[t] for t in old_vocab), dtype=np.int64, count=len(old_vocab))
        new_keys = np.fromiter((position[t] for t in terms), dtype=np.int64, count=len(terms))
        postings = self.postings.merged(delta.removed, new_keys, np.array(owners, dtype=np.int64), remap)
        # Terms no record holds any more leave the vocabulary; term ids stay postings positions.
        vocab = [vocab[i] for i in postings.keys.tolist()]
        postings.keys = np.arange(len(vocab), dtype=np.int64)
        fresh.postings = postings
        fresh.ends = np.cumsum(np.fromiter((len(t) for t in vocab), np.int64, len(vocab))).astype(np.uint32)
        fresh.pool = b"".join(vocab)
        return fresh

    @property
    def nbytes(self) -> int:
        return len(self.pool) + int(self.ends.nbytes) + self.postings.nbytes
