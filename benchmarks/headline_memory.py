"""The read dataset's memory for the headline benchmark: the same render-ready records four ways.

* **Marrow** — the namespace's folded version as a local client holds it: the snapshot read into
  memory and loaded (``ReadState.from_snapshot``), with every type's primary-key index built;
  bytes still allocated afterwards (tracemalloc, which sees numpy's buffers);
* **Python objects** — the records as ``marrow.records`` dataclasses (slots), decoded from JSON,
  with the dicts by id a service would keep them in (tracemalloc);
* **Parquet + zstd** — one file per type (pyarrow), the sum of the files' sizes; lists, sets and maps
  as Arrow list and map columns;
* **JSON** — the records as the legacy table stores them, one JSON document each: the sum of their
  lengths (in memory as ``bytes``, that plus ~33 bytes of object header each).

The legacy table's size on disk (PostgreSQL, index and TOAST included, row lists too) is reported
beside them by the caller.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import msgspec

from marrow import records, store
from store import traced  # benchmarks/store.py: bytes a call leaves allocated


def measure(snapshot_path: Path, by_type: dict[str, list[bytes]]) -> dict[str, Any]:
    """Figures for the snapshot at ``snapshot_path`` and the same records as JSON (``by_type``:
    type name → each record's JSON)."""
    count = sum(len(v) for v in by_type.values())

    def load() -> store.ReadState:
        state = store.ReadState.from_snapshot(snapshot_path.read_bytes())
        for name in state:
            reader = state[name]
            ords = reader.ordinals()
            if len(ords):
                reader.get(getattr(reader[int(ords[0])], reader.schema.primary_key[0]))  # builds the index
        return state

    state, marrow_bytes = traced(load)
    loaded = {name: m["records"] for name, m in state.memory().items()}
    del state

    decoders = {t.__name__: msgspec.json.Decoder(t) for t in records.TYPES}

    def objects() -> dict[str, dict[Any, Any]]:
        return {
            name: {r.id: r for r in (decoders[name].decode(b) for b in bodies)}
            for name, bodies in by_type.items()
        }

    held, object_bytes = traced(objects)
    del held
    json_bytes = sum(len(b) for bodies in by_type.values() for b in bodies)
    parquet = parquet_bytes(by_type, decoders)
    return {
        "records": count,
        "records_by_type": {k: len(v) for k, v in by_type.items()},
        "marrow_records_by_type": loaded,
        "marrow_bytes": marrow_bytes,
        "objects_bytes": object_bytes,
        "parquet_zstd_bytes": parquet,
        "json_bytes": json_bytes,
        "marrow_bytes_per_record": round(marrow_bytes / count, 1),
        "objects_bytes_per_record": round(object_bytes / count, 1),
        "parquet_bytes_per_record": round(parquet / count, 1),
        "json_bytes_per_record": round(json_bytes / count, 1),
        "memory_ratio_vs_json": round(marrow_bytes / json_bytes, 3),
        "memory_ratio_vs_objects": round(marrow_bytes / object_bytes, 3),
        "memory_ratio_vs_parquet": round(marrow_bytes / parquet, 3),
    }


def parquet_bytes(by_type: dict[str, list[bytes]], decoders: dict[str, Any]) -> int:
    """The records as Parquet with zstd, one file per type: the files' total size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, bodies in by_type.items():
            rows = [msgspec.structs.asdict(r) if isinstance(r, msgspec.Struct) else _fields(r)
                    for r in (decoders[name].decode(b) for b in bodies)]  # fmt: skip
            for row in rows:  # sets as sorted lists, maps as (key, value) pairs: Arrow's list and map
                for k, v in row.items():
                    if isinstance(v, frozenset):
                        row[k] = sorted(v)
                    elif isinstance(v, dict):
                        row[k] = list(v.items())
            table = pa.Table.from_pylist(rows, schema=_arrow_schema(name))
            path = Path(tmp) / f"{name}.parquet"
            pq.write_table(table, path, compression="zstd")
            total += path.stat().st_size
    return total


def _fields(record: Any) -> dict[str, Any]:
    return {f: getattr(record, f) for f in record.__slots__}


def _arrow_schema(name: str) -> Any:
    import pyarrow as pa

    strings, ids = pa.list_(pa.string()), pa.list_(pa.int64())
    images = pa.map_(pa.string(), pa.string())
    fields = {
        "Title": [("id", pa.int64()), ("slug", pa.string()), ("name", pa.string()), ("kind", pa.string()),
                  ("synopsis", pa.string()), ("year", pa.int32()), ("maturity", pa.int32()),
                  ("runtime", pa.int32()), ("genres", strings), ("cast", strings), ("countries", strings),
                  ("popularity", pa.int32()), ("added", pa.int64()), ("artwork", images)],
        "Story": [("id", pa.int64()), ("slug", pa.string()), ("headline", pa.string()),
                  ("summary", pa.string()), ("body", pa.string()), ("hero", images), ("titles", ids),
                  ("genres", strings), ("published", pa.int64()), ("revision", pa.int64())],
        "Collection": [("id", pa.int64()), ("slug", pa.string()), ("name", pa.string()), ("titles", ids),
                       ("revision", pa.int64())],
        "Layout": [("id", pa.int64()), ("page", pa.string()), ("device", pa.string()), ("key", pa.string()),
                   ("sections", pa.string()), ("revision", pa.int64())],
    }[name]  # fmt: skip
    return pa.schema(fields)
