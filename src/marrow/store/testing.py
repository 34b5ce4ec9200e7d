"""Helpers for testing code built on the store, the way Marrow tests itself.

* :class:`InMemoryBlobStore` and :class:`InMemoryAnnouncer` (from :mod:`marrow.store.memory`) — a
  producer and its consumers meet without a filesystem or a network;
* :func:`publish_cycle` — publish a hand-committed cycle's blobs to a store;
* :func:`round_trip_snapshot` — write records in one cycle, snapshot, load: the state a consumer sees;
* :func:`round_trip_delta` — two cycles; the second state reached by a delta and by a snapshot;
* :func:`dump` and :func:`records_equal` — compare states by their records, not their bytes;
  :func:`canonical` puts a read value in the form :func:`dump` uses.

::

    state = round_trip_snapshot(schema, {"Title": [{"id": 1, "title": "Dark"}]})
    assert state["Title"].get(1).title == "Dark"

    via_delta, via_snapshot = round_trip_delta(before, after, schema)
    assert records_equal(via_delta, via_snapshot)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from marrow.store.blobstore import BlobRef, Publisher
from marrow.store.cycle import Cycle
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore
from marrow.store.read import ReadState
from marrow.store.schema import Schema
from marrow.store.write import WriteState

__all__ = [
    "NAN",
    "InMemoryAnnouncer",
    "InMemoryBlobStore",
    "add_records",
    "canonical",
    "dump",
    "publish_cycle",
    "records_equal",
    "round_trip_delta",
    "round_trip_snapshot",
]

#: Records to write: objects whose class names their type, or a mapping of type name to records
#: (objects or mappings of field name to value).
Records = Iterable[Any] | Mapping[str, Iterable[Any]]

#: The one NaN :func:`dump` puts in place of every NaN it reads, so that dumps compare with ``==``.
NAN = float("nan")


def publish_cycle(store: Publisher, cycle: Cycle) -> list[BlobRef]:
    """Publish a committed cycle's snapshot and, when it follows a version, its delta and reverse delta.

    The cycle's versions (``commit(version=...)``) name the blobs, so both must be set. A
    :class:`~marrow.store.Producer` does this (and validates, and announces) in real use; this is for
    tests that drive a :class:`~marrow.store.WriteState` by hand.
    """
    if cycle.version is None:
        raise ValueError("commit the cycle with a version number to publish it")
    refs = [BlobRef("snapshot", cycle.version)]
    store.publish(refs[0], cycle.snapshot())
    delta, reverse = cycle.delta(), cycle.reverse_delta()
    if delta is not None and reverse is not None:
        if cycle.previous_version is None:
            raise ValueError("the previous cycle was committed without a version number")
        refs += [
            BlobRef("delta", cycle.version, cycle.previous_version),
            BlobRef("reverse", cycle.previous_version, cycle.version),
        ]
        store.publish(refs[1], delta)
        store.publish(refs[2], reverse)
    return refs


def add_records(ws: WriteState, records: Records) -> None:
    """Add ``records`` to the current cycle of ``ws``."""
    if isinstance(records, Mapping):
        for name, group in records.items():
            ws.add_all(group, name)
    else:
        ws.add_all(records)


def round_trip_snapshot(schema: Schema, records: Records) -> ReadState:
    """Write ``records`` in one cycle, make the snapshot blob and load it: what a consumer would see."""
    ws = WriteState(schema)
    add_records(ws, records)
    return ReadState.from_snapshot(ws.commit(version=1).snapshot())


def round_trip_delta(
    records_before: Records,
    records_after: Records,
    schema: Schema,
    schema_after: Schema | None = None,
) -> tuple[ReadState, ReadState]:
    """Write two cycles; return the second state reached by a delta and by its snapshot.

    The first cycle writes ``records_before`` and a consumer loads its snapshot; the second writes
    ``records_after`` (with ``schema_after`` when the schema changes between the two) and the
    consumer applies its delta. Both returned states should hold the same records and checksum.
    """
    ws = WriteState(schema)
    add_records(ws, records_before)
    first = ws.commit(version=1)
    consumer = ReadState.from_snapshot(first.snapshot())
    if schema_after is not None and schema_after != schema:
        ws = WriteState(schema_after, previous=ws.previous, tag=ws.tag)
    add_records(ws, records_after)
    second = ws.commit(version=2)
    delta = second.delta()
    assert delta is not None  # the second cycle always has an origin
    return consumer.apply_delta(delta), ReadState.from_snapshot(second.snapshot())


def dump(state: ReadState) -> dict[str, dict[int, dict[str, Any]]]:
    """Every record of ``state``: ``{type: {ordinal: {field: value}}}``.

    References are the ordinals they point to, lists are lists, sets frozensets, maps dicts, and
    every NaN is :data:`NAN`, so two dumps compare equal exactly when the states hold the same
    records at the same ordinals.
    """
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for name in sorted(state):
        reader = state[name]
        ords = reader.ordinals()
        columns = reader.read(ords)
        fields = reader.schema.field_names
        out[name] = {o: {f: canonical(columns[f][i]) for f in fields} for i, o in enumerate(ords.tolist())}
    return out


def records_equal(a: ReadState, b: ReadState) -> bool:
    """Do two states hold the same records at the same ordinals? (Encodings may differ.)"""
    return dump(a) == dump(b)


def canonical(v: Any) -> Any:
    """``v`` as :func:`dump` shows it: sets as frozensets, every NaN as :data:`NAN`, at any depth."""
    if isinstance(v, float):
        return NAN if math.isnan(v) else v
    if isinstance(v, list):
        return [canonical(x) for x in v]
    if isinstance(v, frozenset | set):
        return frozenset(canonical(x) for x in v)
    if isinstance(v, dict):
        return {canonical(k): canonical(x) for k, x in v.items()}
    return v
