"""Read-after-write benchmark: durable writes, propagation to another process, strong reads.

All on the embedded default (a namespace in a directory on the local disk: segment-file write log
with group commit and fdatasync, file lease), side by side with peers in the same run:

* ``writes_per_s_10kb`` / ``writes_per_s_1kb`` — acknowledged, durable bulk updates of one record
  with a 10 KB (1 KB) incompressible payload, from ``--concurrency`` threads; peer:
  ``pg_writes_per_s_10kb``, one ``INSERT`` + ``COMMIT`` per write into PostgreSQL (synchronous
  commit on, as shipped), from as many threads with a connection each;
* ``ack_p99_ms`` — p99 of the time from ``bulk_update`` to its return in the 10 KB run (also
  ``ack_p50_ms``; ``ack_p99_ms_single``: one thread, no queueing); peer ``pg_ack_p99_ms``;
* ``propagation_p99_ms`` — a writer acknowledges 1 KB writes at ~``--rate``/s; a local client in another
  process (spawned) tails the log; the time from the acknowledgement to the write being visible to an
  eventual read there (wall clock, one host);
* ``strong_read_p99_ms`` — in that process, while the writes go on, a strong read (learn the log's last
  offset, catch up, read a record) every few ms; peer ``redis_get_p99_ms``, a GET over loopback from the
  same process, and ``eventual_read_us`` (a local read).

Folding is off while writes are timed (a fold publishes a version; `bench lifecycle` measures that).
Prints one JSON object. Run: ``marrow bench raw --json``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from marrow import store
from marrow.raw import Upsert
from marrow.raw.namespace import Namespace


@dataclass(frozen=True)
class Payload:
    __primary_key__ = "id"
    id: int
    body: bytes


SCHEMA = store.Schema.from_classes(Payload)


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _threads(count: int, work: Any) -> float:
    threads = [threading.Thread(target=work, args=(k,)) for k in range(count)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def writes(root: str, size: int, total: int, concurrency: int) -> tuple[float, list[float]]:
    """(acknowledged writes per second, ack latencies in ms) for ``total`` writes of ``size`` bytes."""
    ns = Namespace(os.path.join(root, f"w{size}-{concurrency}"), SCHEMA)
    latencies: list[float] = []
    bodies = [os.urandom(size) for _ in range(64)]
    per = total // concurrency
    with ns.writer(fold=False) as writer:

        def work(k: int) -> None:
            mine = []
            for i in range(per):
                started = time.perf_counter()
                writer.bulk_update([Upsert(Payload(k * per + i, bodies[i % 64]))])
                mine.append((time.perf_counter() - started) * 1e3)
            latencies.extend(mine)

        seconds = _threads(concurrency, work)
    return per * concurrency / seconds, latencies


def pg_writes(size: int, total: int, concurrency: int) -> tuple[float, list[float]] | None:
    try:
        import psycopg
    except ImportError:
        return None
    table = f"raw_bench_{uuid.uuid4().hex[:8]}"
    dsn = "postgresql://postgres@127.0.0.1:5432/test"
    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=2)
    except psycopg.Error:
        return None
    admin.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, body bytea)")
    latencies: list[float] = []
    bodies = [os.urandom(size) for _ in range(64)]
    per = total // concurrency
    upsert = f"INSERT INTO {table} VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body"
    try:

        def work(k: int) -> None:
            mine = []
            with psycopg.connect(dsn) as conn:
                for i in range(per):
                    started = time.perf_counter()
                    conn.execute(upsert, (k * per + i, bodies[i % 64]))
                    conn.commit()
                    mine.append((time.perf_counter() - started) * 1e3)
            latencies.extend(mine)

        seconds = _threads(concurrency, work)
    finally:
        admin.execute(f"DROP TABLE {table}")
        admin.close()
    return per * concurrency / seconds, latencies


def _follow(root: str, count: int, reads_every: float, out: Any) -> None:
    """In another process: tail the namespace; report when each offset became visible, and time
    strong reads (and the Redis peer) while the writes go on."""
    seen: dict[int, float] = {}
    ns = Namespace(root, SCHEMA)
    client = ns.client()
    original = client._pull

    def timed_pull() -> int:
        before = client.overlay.offset
        reached = original()
        if reached > before:
            now = time.time()
            for offset in range(before + 1, reached + 1):
                seen.setdefault(offset, now)
        return reached

    client._pull = timed_pull  # type: ignore[method-assign]
    out.put("ready")
    strong, eventual, redis_gets = [], [], []
    redis = _redis()
    started = time.monotonic()
    while len(seen) < count and time.monotonic() - started < 120:
        t0 = time.perf_counter()
        client.view("strong")["Payload"].get(1)
        strong.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        client.view()["Payload"].get(1)
        eventual.append((time.perf_counter() - t0) * 1e6)
        if redis is not None:
            t0 = time.perf_counter()
            redis.get("raw-bench-key")
            redis_gets.append((time.perf_counter() - t0) * 1e3)
        time.sleep(reads_every)
    client.close()
    out.put((seen, strong, eventual, redis_gets))


def _redis() -> Any:
    try:
        import redis

        r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
        r.set("raw-bench-key", os.urandom(1024))
        return r
    except Exception:
        return None


def propagation(root: str, count: int, rate: float) -> dict[str, Any]:
    ns = Namespace(os.path.join(root, "propagation"), SCHEMA)
    acked: dict[int, float] = {}
    with ns.writer(fold=False) as writer:
        writer.bulk_update([Upsert(Payload(1, b"x" * 1024))])
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        follower = ctx.Process(target=_follow, args=(str(ns.directory), count, 0.005, out))
        follower.start()
        out.get(timeout=60)
        time.sleep(0.5)
        body = os.urandom(1024)
        for i in range(count):
            offset = writer.bulk_update([Upsert(Payload(i % 100, body))])
            acked[offset] = time.time()
            time.sleep(1 / rate)
        seen, strong, eventual, redis_gets = out.get(timeout=180)
        follower.join(10)
    lags = [(seen[o] - t) * 1e3 for o, t in acked.items() if o in seen]
    result: dict[str, Any] = {
        "propagation_p50_ms": round(statistics.median(lags), 2),
        "propagation_p99_ms": round(_p(lags, 0.99), 2),
        "propagation_missed": len(acked) - len(lags),
        "strong_read_p50_ms": round(statistics.median(strong), 3),
        "strong_read_p99_ms": round(_p(strong, 0.99), 3),
        "eventual_read_us": round(statistics.median(eventual), 1),
    }
    if redis_gets:
        result["redis_get_p50_ms"] = round(statistics.median(redis_gets), 3)
        result["redis_get_p99_ms"] = round(_p(redis_gets, 0.99), 3)
    return result


def run(total: int, concurrency: int, count: int, rate: float) -> dict[str, Any]:
    out: dict[str, Any] = {"writes": total, "concurrency": concurrency}
    with tempfile.TemporaryDirectory(prefix="marrow-raw-", dir="/var/tmp") as root:
        per_s, lat = writes(root, 10_000, total, concurrency)
        out["writes_per_s_10kb"] = round(per_s)
        out["ack_p50_ms"] = round(statistics.median(lat), 2)
        out["ack_p99_ms"] = round(_p(lat, 0.99), 2)
        peer = pg_writes(10_000, total, concurrency)
        if peer is not None:
            out["pg_writes_per_s_10kb"] = round(peer[0])
            out["pg_ack_p99_ms"] = round(_p(peer[1], 0.99), 2)
            out["writes_ratio_vs_pg"] = round(per_s / peer[0], 2)
        per_s, _ = writes(root, 1000, total, concurrency)
        out["writes_per_s_1kb"] = round(per_s)
        _, single = writes(root, 10_000, min(total, 500), 1)
        out["ack_p99_ms_single"] = round(_p(single, 0.99), 2)
        out.update(propagation(root, count, rate))
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--writes", type=int, default=5000, help="writes per throughput run")
    p.add_argument("--concurrency", type=int, default=32, help="writer threads")
    p.add_argument("--propagated", type=int, default=1000, help="writes timed for propagation")
    p.add_argument("--rate", type=float, default=200.0, help="writes per second while propagation is timed")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = run(a.writes, a.concurrency, a.propagated, a.rate)
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
