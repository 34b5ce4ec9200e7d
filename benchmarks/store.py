"""Store benchmark: memory and read speed of a loaded state, side by side with its peers.

Peers, measured in the same run on the same records:
  * slots dataclasses in a dict keyed by id (memory, point reads, bulk reads);
  * the same data as a Parquet file with zstd (memory);
  * sqlite3 ``:memory:`` with an integer primary key (point reads).

Memory is what the loaded data keeps allocated (tracemalloc, which also sees numpy's buffers).
Prints one JSON object. Run: ``marrow bench store --records 1000000 --json``.
"""

from __future__ import annotations

import gc
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from marrow import sample, store


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def paired(ours: Callable[[], Any], peer: Callable[[], Any], rounds: int = 7) -> tuple[float, float, float]:
    """Time ours and the peer alternately; returns (our best, peer's best, median of peer/ours per round).

    Alternating rounds make drift on a shared machine hit both sides alike; the median ratio is the
    figure reported.
    """
    a_times, b_times, ratios = [], [], []
    for _ in range(rounds):
        a = best_of(ours, 1)
        b = best_of(peer, 1)
        a_times.append(a)
        b_times.append(b)
        ratios.append(b / a)
    return min(a_times), min(b_times), statistics.median(ratios)


def traced(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run fn; return its result and the bytes it leaves allocated."""
    gc.collect()
    tracemalloc.start()
    result = fn()
    gc.collect()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return result, size


def parquet_bytes(cat: sample.Catalogue, directory: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = cat.titles
    titles = pa.table(
        {
            "id": pa.array([x.id for x in t], pa.int64()),
            "title": pa.array([x.title for x in t], pa.string()),
            "synopsis": pa.array([x.synopsis for x in t], pa.string()),
            "year": pa.array([x.year for x in t], pa.int16()),
            "maturity": pa.array([x.maturity for x in t], pa.int8()),
            "runtime": pa.array([x.runtime for x in t], pa.int16()),
            "cast": pa.array([[p.id for p in x.cast] for x in t], pa.list_(pa.int64())),
        }
    )
    people = pa.table(
        {
            "id": pa.array([p.id for p in cat.people], pa.int64()),
            "name": pa.array([p.name for p in cat.people]),
        }
    )
    total = 0
    for name, table in (("titles", titles), ("people", people)):
        path = directory / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        total += path.stat().st_size
    return total


def run(records: int) -> dict[str, Any]:
    rng = random.Random(42)
    tmp = Path(tempfile.mkdtemp(prefix="marrow-bench-"))
    out: dict[str, Any] = {"records": records}

    # Peer 1: the records as slots dataclasses in a dict, as generated.
    def build_objects() -> tuple[sample.Catalogue, dict[int, sample.Title]]:
        cat = sample.catalogue(records)
        return cat, {t.id: t for t in cat.titles}

    (cat, by_id), dataclass_bytes = traced(build_objects)
    # the catalogue's own lists hold 8 bytes per record that a dict-only holder would not
    dataclass_bytes -= sys.getsizeof(cat.titles) + sys.getsizeof(cat.people)
    keys = list(by_id)

    # Marrow: produce version 1, and version 2 with 1% of titles changed.
    schema = store.Schema.from_classes(sample.Title)
    ws = store.WriteState(schema)
    t0 = time.perf_counter()
    for t in cat.titles:
        ws.add(t)
    v1 = ws.commit(version=1)
    out["produce_s"] = round(time.perf_counter() - t0, 3)
    snap_path = tmp / "snapshot-1"
    snap_path.write_bytes(v1.snapshot())
    ws.keep_previous()
    changed = sample.revised(cat.titles, 0.01, rng, " (Remastered)")
    edit = store.Incremental(ws)
    for t in changed:
        edit.add_or_modify(t)
    v2 = ws.commit(version=2)
    delta = v2.delta()
    assert delta is not None
    del ws, v1, v2
    gc.collect()

    def load() -> store.ReadState:
        state = store.ReadState.from_snapshot(snap_path.read_bytes())
        state["Title"].get(keys[0])  # builds the primary-key index
        return state

    state, marrow_bytes = traced(load)
    out["snapshot_bytes"] = snap_path.stat().st_size
    out["bytes_per_record"] = round(marrow_bytes / records, 1)
    out["dataclass_bytes_per_record"] = round(dataclass_bytes / records, 1)
    out["memory_ratio_vs_dataclass"] = round(marrow_bytes / dataclass_bytes, 3)
    pq_bytes = parquet_bytes(cat, tmp)
    out["parquet_bytes_per_record"] = round(pq_bytes / records, 1)
    out["memory_ratio_vs_parquet"] = round(marrow_bytes / pq_bytes, 3)
    out["snapshot_load_s"] = round(best_of(load, 3), 3)

    # Point reads: get by primary key + 3 fields, one a string.
    titles = state["Title"]
    # Keys arrive fresh (from a request, or decoded from another record), not as the very int objects
    # the dataclasses hold; both sides read the same list.
    pick = np.random.default_rng(7)
    key_array = np.array(keys, dtype=np.int64)
    probe = key_array[pick.integers(0, len(keys), 100_000)].tolist()

    def marrow_point() -> None:
        get = titles.get
        for k in probe:
            v = get(k)
            _ = (v.title, v.year, v.runtime)

    def dict_point() -> None:
        for k in probe:
            v = by_id[k]
            _ = (v.title, v.year, v.runtime)

    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, title TEXT, synopsis TEXT,"
        " year INT, maturity INT, runtime INT)"
    )
    db.executemany(
        "INSERT INTO t VALUES (?,?,?,?,?,?)",
        ((t.id, t.title, t.synopsis, t.year, t.maturity, t.runtime) for t in cat.titles),
    )
    db.commit()

    def sqlite_point() -> None:
        ex = db.execute
        for k in probe:
            ex("SELECT title, year, runtime FROM t WHERE id = ?", (k,)).fetchone()

    m, d, dict_over_ours = paired(marrow_point, dict_point)
    _, s, sqlite_over_ours = paired(marrow_point, sqlite_point, 5)
    n = len(probe)
    out["point_read_ns"] = round(m / n * 1e9)
    out["dict_point_read_ns"] = round(d / n * 1e9)
    out["sqlite_point_read_ns"] = round(s / n * 1e9)
    out["point_read_ratio_vs_dict"] = round(1 / dict_over_ours, 2)
    out["point_read_speedup_vs_sqlite"] = round(sqlite_over_ours, 1)

    # Bulk reads: 3,000 random records x 4 fields into Python values.
    batches = [key_array[pick.integers(0, len(keys), 3000)].tolist() for _ in range(20)]
    fields = ["title", "synopsis", "year", "runtime"]

    def marrow_bulk() -> None:
        for b in batches:
            titles.read(titles.get_many(b), fields)

    def dict_bulk() -> None:
        for b in batches:
            rows = [by_id[k] for k in b]
            {
                "title": [r.title for r in rows],
                "synopsis": [r.synopsis for r in rows],
                "year": [r.year for r in rows],
                "runtime": [r.runtime for r in rows],
            }

    mb, db_, dict_over_ours_bulk = paired(marrow_bulk, dict_bulk)
    out["bulk_read_us_per_record"] = round(mb / (20 * 3000) * 1e6, 3)
    out["dict_bulk_read_us_per_record"] = round(db_ / (20 * 3000) * 1e6, 3)
    out["bulk_read_ratio_vs_dict"] = round(1 / dict_over_ours_bulk, 2)

    # Delta: 1% of records changed, applied to a state whose primary-key index is in use.
    out["delta_bytes"] = len(delta)
    applied = []

    def apply() -> None:
        applied.append(state.apply_delta(delta))

    out["delta_apply_s"] = round(best_of(apply, 3), 3)
    new = applied[-1]
    assert new["Title"].get(changed[0].id).title.endswith("(Remastered)")
    out["python"] = sys.version.split()[0]
    out["cpus"] = os.cpu_count()
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = run(a.records)
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
