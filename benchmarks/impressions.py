"""Impression history benchmark (issue 7): ingest, reads through the cache, freshness, store reads saved.

Each figure is printed beside its peer, measured in the same run:

* ``ingest_events_per_s`` — events per second through validation, filters, dedup, the buffer and the
  embedded SQLite store, acknowledged once stored (``submit(wait=True)``) from four threads. Peers:
  the in-memory store (the pipeline's own cost) and PostgreSQL (when reachable); and
  ``ingest_http_events_per_s``, the same through the HTTP API served by ``marrow impressions serve``
  in another process, fed by the load generator (``benchmarks/impressions_load.py``).
* ``read_qps`` / ``read_p99_ms`` — history queries per second in one thread, and their p99, through
  the node cache over SQLite; a query is a member's whole home page (10 rows × 20 titles) in one
  call, for members drawn with Zipf skew. ``read_hit_rate`` is the share answered by the cache.
  ``read_qps_40_titles``: the same with the page's first 40 titles (a first fragment). Peers: the
  same queries against the store without a cache (``read_qps_store``) and through Redis alone, no
  node cache (``read_qps_redis``), with their p99s. Every side runs five rounds, alternating with the
  others' (the host's load moves between them); ``read_speedup_vs_*`` is the median of the per-round
  ratios.
* ``backing_reads_saved`` — the share of the store reads the queries would make without a cache
  (one each) that the cache avoided, counting the 1% shadow comparisons as store reads.
* ``event_to_visible_p90_ms`` — from submitting one event (not waiting) to a read showing it, while
  background ingest runs; p90 over probes.

Prints one JSON object. Run: ``marrow bench impressions --json``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the load generator beside this file

from impressions_load import Catalogue, in_threads, run_http, visits
from marrow.impressions import (
    Impression,
    ImpressionHistory,
    ImpressionSettings,
    ImpressionStore,
    InMemoryImpressionStore,
)
from marrow.impressions.sqlite import SQLiteImpressionStore

DAY_MS = 86_400_000
POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _up(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _batches(profiles: int, events: int, seed: int) -> list[list[Impression]]:
    """Visits adding up to about ``events`` events, stamped over the last 25 days."""
    now = int(time.time() * 1000)
    out, n = [], 0
    for batch in visits(Catalogue(), profiles, now - 25 * DAY_MS, 25 * DAY_MS - 60_000, seed=seed):
        out.append(batch)
        n += len(batch)
        if n >= events:
            return out
    raise AssertionError("visits() is endless")


def ingest(service: ImpressionHistory, batches: list[list[Impression]], threads: int = 4) -> dict[str, float]:
    """Submit ``batches`` from ``threads`` threads, each waiting for its acknowledgement."""
    work: Iterator[list[Impression]] = iter(batches)
    lock = threading.Lock()
    stored = [0]

    def worker() -> None:
        while True:
            with lock:
                batch = next(work, None)
            if batch is None:
                return
            receipt = service.submit(batch, wait=True, timeout=60)
            with lock:
                stored[0] += receipt.stored or 0

    elapsed = in_threads(worker, threads)
    events = sum(len(b) for b in batches)
    return {"events_per_s": events / elapsed, "stored_share": stored[0] / events}


def _service(store: ImpressionStore, shared: Any = None, **settings: Any) -> ImpressionHistory:
    return ImpressionHistory(ImpressionSettings(store="memory", **settings), store, shared)


def ingest_figures(
    directory: Path, events: int, profiles: int
) -> tuple[dict[str, Any], SQLiteImpressionStore]:
    out: dict[str, Any] = {}
    batches = _batches(profiles, events, seed=7)
    out["ingest_events"] = sum(len(b) for b in batches)
    sqlite = SQLiteImpressionStore(directory / "impressions.db")
    with _service(sqlite) as service:
        got = ingest(service, batches)
    out["ingest_events_per_s"] = round(got["events_per_s"])
    out["ingest_stored_share"] = round(got["stored_share"], 3)
    peers = batches[: len(batches) // 2]
    with _service(InMemoryImpressionStore()) as service:
        out["ingest_events_per_s_memory"] = round(ingest(service, peers)["events_per_s"])
    if _up(5432):
        from marrow.impressions.postgres import PostgresImpressionStore

        pg = PostgresImpressionStore(POSTGRES_DSN, table=f"impressions_bench_{uuid.uuid4().hex[:8]}")
        try:
            with _service(pg) as service:
                out["ingest_events_per_s_postgres"] = round(ingest(service, peers)["events_per_s"])
        finally:
            pg.drop()
            pg.close()
    else:
        out["ingest_events_per_s_postgres"] = None
    out["ingest_http_events_per_s"] = _ingest_http(directory)
    out["ingest_ratio_sqlite_vs_memory"] = round(
        out["ingest_events_per_s"] / out["ingest_events_per_s_memory"], 2
    )
    return out, sqlite


def _ingest_http(directory: Path, seconds: float = 10.0) -> float | None:
    """Events per second through ``marrow impressions serve`` (another process), from the load generator."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "MARROW_IMPRESSIONS_STORE": f"sqlite:{directory / 'http.db'}",
        "MARROW_IMPRESSIONS_TOKENS": "bench",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from marrow.cli import main; main()",
            "impressions",
            "serve",
            "--port",
            str(port),
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while not _up(port):
            if time.monotonic() > deadline or server.poll() is not None:
                return None
            time.sleep(0.1)
        got = run_http(f"http://127.0.0.1:{port}", "bench", seconds, concurrency=4)
        return float(got["events_per_s"])
    finally:
        server.terminate()
        server.wait(30)


def _queries(profiles: int, count: int, seed: int) -> list[tuple[int, list[int]]]:
    """``count`` home-page queries: a member drawn with Zipf skew, and every title of their page."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, profiles + 1) ** 1.1
    chosen = rng.choice(profiles, size=count, p=weights / weights.sum())
    catalogue = Catalogue()
    pages = {int(p): [t for row in catalogue.rows(int(p)) for t in row.titles] for p in set(chosen.tolist())}
    return [(int(p), pages[int(p)]) for p in chosen]


def timed_reads(service: ImpressionHistory, queries: list[tuple[int, list[int]]]) -> tuple[float, np.ndarray]:
    """(seconds, per-query latencies in ns) of ``queries`` made one after another."""
    latencies = np.empty(len(queries), dtype=np.int64)
    clock = time.perf_counter_ns
    read = service.read
    started = clock()
    for i, (profile, titles) in enumerate(queries):
        t = clock()
        read(profile, titles)
        latencies[i] = clock() - t
    return (clock() - started) / 1e9, latencies


class Side:
    """One side of the read comparison: a service, the queries of each round, what they took."""

    def __init__(
        self, name: str, service: ImpressionHistory, queries: list[tuple[int, list[int]]], rounds: int
    ):
        self.name = name
        self.service = service
        size = -(-len(queries) // rounds)
        self.rounds = [queries[i * size : (i + 1) * size] for i in range(rounds)]
        self.seconds: list[float] = []
        self.latencies: list[np.ndarray] = []
        self.store_reads: list[int] = []

    def run(self, i: int) -> None:
        reads = sum(self.service.metrics.store_reads.values())
        seconds, latencies = timed_reads(self.service, self.rounds[i])
        self.seconds.append(seconds)
        self.latencies.append(latencies)
        self.store_reads.append(sum(self.service.metrics.store_reads.values()) - reads)

    def qps(self, i: int | None = None) -> float:
        if i is None:
            return sum(len(r) for r in self.rounds) / sum(self.seconds)
        return len(self.rounds[i]) / self.seconds[i]

    def figures(self, suffix: str) -> dict[str, Any]:
        every = np.concatenate(self.latencies)
        return {
            f"read_qps{suffix}": round(self.qps()),
            f"read_p50_ms{suffix}": round(float(np.percentile(every, 50)) / 1e6, 3),
            f"read_p99_ms{suffix}": round(float(np.percentile(every, 99)) / 1e6, 3),
        }


def read_figures(
    store: SQLiteImpressionStore, profiles: int, queries: int, cache_entries: int, rounds: int = 5
) -> dict[str, Any]:
    """The cached reads and their peers, in alternating rounds (the host's load moves between them)."""
    out: dict[str, Any] = {
        "read_titles_per_query": 200,
        "read_cache_entries": cache_entries,
        "read_rounds": rounds,
    }
    stream = _queries(profiles, queries, seed=11)
    few = stream[: max(1000, queries // 20)]  # the peers are 30-100 times slower: fewer queries
    cached = Side("cache", _service(store, cache_entries=cache_entries, shadow_share=0.01), stream, rounds)
    fragment = Side(
        "fragment",
        _service(store, cache_entries=cache_entries, shadow_share=0.01),
        [(p, titles[:40]) for p, titles in stream],
        rounds,
    )
    sides = [cached, fragment, Side("store", _service(store, dial_up=0.0), few, rounds)]
    shared = None
    if _up(6379):
        from marrow.impressions.rediscache import RedisSharedCache

        shared = RedisSharedCache(REDIS_URL, 600, prefix=f"bench:{uuid.uuid4().hex[:8]}:")
        redis_side = Side("redis", _service(store, shared, cache_entries=0), few, rounds)
        timed_reads(redis_side.service, few)  # a first pass fills Redis from the store
        sides.append(redis_side)
    try:
        for i in range(rounds):
            for side in sides:
                side.run(i)
        m = cached.service.metrics
        out.update(cached.figures(""))
        out["read_hit_rate"] = round(m.hit_rate() or 0.0, 4)
        out["read_shadow_mismatches"] = cached.service.rollout.mismatches
        # without a cache every query is one store read: the share of those the cache avoided
        out["backing_reads_saved"] = round(1 - sum(m.store_reads.values()) / len(stream), 4)
        out["read_qps_by_round"] = [round(cached.qps(i)) for i in range(rounds)]
        out["read_store_reads_by_round"] = cached.store_reads  # misses and shadow reads
        out.update(fragment.figures("_40_titles"))
        for peer in sides[2:]:
            assert peer.service.metrics.store_reads["miss" if peer.name == "redis" else "uncached"] <= len(
                few
            )
            out.update(peer.figures(f"_{peer.name}"))
            ratios = [cached.qps(i) / peer.qps(i) for i in range(rounds)]
            out[f"read_speedup_vs_{peer.name}"] = round(float(np.median(ratios)), 1)
        if shared is None:
            out["read_qps_redis"] = None  # no Redis on 127.0.0.1:6379
    finally:
        for side in sides:
            side.service.close()
        if shared is not None:
            shared.forget(sorted({p for p, _ in few}))
            shared.close()
    return out


def visibility(directory: Path, probes: int = 200, background_events_per_s: float = 1500.0) -> dict[str, Any]:
    """Submit one event, not waiting; poll reads until it shows. Background ingest runs meanwhile."""
    store = SQLiteImpressionStore(directory / "visible.db")
    service = _service(store)
    stop = threading.Event()
    batches = iter(_batches(5000, int(background_events_per_s * 60), seed=3))

    def background() -> None:
        while not stop.is_set():
            batch = next(batches, None)
            if batch is None:
                return
            service.submit(batch, wait=False)
            time.sleep(len(batch) / background_events_per_s)

    feeder = threading.Thread(target=background)
    feeder.start()
    lags = []
    try:
        for i in range(probes):
            profile = 10_000_000 + i % 20
            title = 100_000 + i
            before = service.read(profile, [title]).histories[title].count_30d
            started = time.perf_counter()
            event = Impression(profile, title, "home", "row-0", 0, "tv", int(time.time() * 1000), 1.0, 2000)
            service.submit([event], wait=False)
            while service.read(profile, [title]).histories[title].count_30d == before:
                time.sleep(0.0005)
                if time.perf_counter() - started > 10:
                    raise AssertionError(f"probe {i} not visible within 10 s")
            lags.append((time.perf_counter() - started) * 1e3)
            time.sleep(0.02)
    finally:
        stop.set()
        feeder.join()
        service.close()
        store.close()
    return {
        "event_to_visible_p50_ms": round(float(np.percentile(lags, 50)), 2),
        "event_to_visible_p90_ms": round(float(np.percentile(lags, 90)), 2),
        "event_to_visible_background_events_per_s": background_events_per_s,
        "event_to_visible_peer_netflix_p90_ms": 10_000,
    }


def run(events: int, profiles: int, queries: int, cache_entries: int) -> dict[str, Any]:
    out: dict[str, Any] = {"profiles": profiles}
    with tempfile.TemporaryDirectory(prefix="marrow-impressions-") as d:
        directory = Path(d)
        figures, store = ingest_figures(directory, events, profiles)
        out.update(figures)
        out["stored_impressions"] = store.count()
        out.update(read_figures(store, profiles, queries, cache_entries))
        store.close()
        out.update(visibility(directory))
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=100_000, help="events the ingest figure submits")
    p.add_argument("--profiles", type=int, default=10_000, help="members browsing")
    p.add_argument("--queries", type=int, default=100_000, help="history queries the read figure makes")
    p.add_argument("--cache-entries", type=int, default=10_000)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = run(a.events, a.profiles, a.queries, a.cache_entries)
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
