"""Lifecycle benchmark: how fast a version reaches another process, and how long readers stall.

* ``propagation_p99_ms_fs`` — a producer announces a version on the filesystem store; a consumer in
  another process (inotify watcher, background refresh) serves it; the time between the two, p99 over
  the cycles. ``propagation_p99_ms_nats`` — the same over NATS JetStream, when the server is reachable
  and the NATS store is installed.
* ``read_stall_max_ms`` — reader threads read records in a loop while the consumer applies deltas; the
  longest gap any reader saw between two reads.

Not yet measured here (issue 3): ``shared_pss_ratio_4_workers`` and ``reload_peak_ratio`` (printed as
null). Prints one JSON object. Run: ``marrow bench lifecycle --json``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import statistics
import tempfile
import threading
import time
import uuid
from typing import Any

from marrow import sample, store
from marrow.store.filesystem import FilesystemAnnouncementWatcher, FilesystemAnnouncer, FilesystemBlobStore
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore


def _open(kind: str, where: str) -> tuple[Any, Any]:
    """(blob store, announcement watcher) of a filesystem directory or NATS bucket prefix."""
    if kind == "fs":
        return FilesystemBlobStore(where), FilesystemAnnouncementWatcher(where)
    from marrow.store.nats import NatsAnnouncementWatcher, NatsBlobStore

    return NatsBlobStore(bucket=f"{where}-blobs"), NatsAnnouncementWatcher(bucket=f"{where}-announce")


def _follow(kind: str, where: str, versions: int, out: Any) -> None:
    """In another process: follow the store and report when each version became the one served."""
    seen: dict[int, float] = {}
    done = threading.Event()

    def listener(_old: Any, new: store.ReadState) -> None:
        seen[int(new.version)] = time.time()  # type: ignore[arg-type]
        if len(seen) >= versions:
            done.set()

    blobs, watcher = _open(kind, where)
    consumer = store.Consumer(blobs, watcher, listeners=[listener])
    consumer.start()
    out.put("ready")
    done.wait(120)
    consumer.close()
    watcher.close()
    out.put(seen)


def propagation(kind: str, titles: int, cycles: int) -> dict[str, float]:
    """Announce ``cycles`` small incremental versions; time each until another process serves it."""
    cat = sample.catalogue(titles)
    schema = store.Schema.from_classes(sample.Title)
    rng = random.Random(5)
    announced: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="marrow-lifecycle-") as d:
        where = d if kind == "fs" else f"bench-{uuid.uuid4().hex[:10]}"
        blobs, announcer = _publisher(kind, where)

        class Timed:
            def announce(self, version: int) -> None:
                announcer.announce(version)
                announced[version] = time.time()  # when the announcement is durable

        producer = store.Producer(schema, blobs, Timed(), keep_snapshots=3)
        producer.run_cycle(lambda w: w.add_all(cat.titles))
        first = min(announced)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        follower = ctx.Process(target=_follow, args=(kind, where, cycles + 1, out))
        follower.start()
        out.get(timeout=60)
        time.sleep(0.5)  # the follower loads the first version
        for i in range(cycles):
            edits = sample.revised(cat.titles, 0.001, rng, f" ({i})")

            def change(inc: store.Incremental, edits: list[sample.Title] = edits) -> None:
                for t in edits:
                    inc.add_or_modify(t)

            assert producer.run_incremental(change) is not None
            time.sleep(0.05)
        seen = out.get(timeout=120)
        follower.join(10)
        for closable in (blobs, announcer):
            getattr(closable, "close", lambda: None)()
    lags = sorted((seen[v] - t) * 1e3 for v, t in announced.items() if v in seen and v != first)
    return {
        f"propagation_p50_ms_{kind}": round(statistics.median(lags), 2),
        f"propagation_p99_ms_{kind}": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 2),
        f"propagation_missed_{kind}": len(announced) - 1 - len(lags),
    }


def _publisher(kind: str, where: str) -> tuple[Any, Any]:
    if kind == "fs":
        return FilesystemBlobStore(where), FilesystemAnnouncer(where)
    from marrow.store.nats import NatsAnnouncer, NatsBlobStore

    return NatsBlobStore(bucket=f"{where}-blobs"), NatsAnnouncer(bucket=f"{where}-announce")


def _nats_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
        return True
    except OSError:
        return False


def read_stall(titles: int, deltas: int) -> dict[str, float]:
    """The longest gap between two reads of a reader thread while a consumer applies deltas."""
    cat = sample.catalogue(titles)
    schema = store.Schema.from_classes(sample.Title)
    blobs = InMemoryBlobStore()
    announcer = InMemoryAnnouncer()
    producer = store.Producer(schema, blobs, announcer, integrity_check=False)
    producer.run_cycle(lambda w: w.add_all(cat.titles))
    rng = random.Random(9)
    for i in range(deltas):
        edits = sample.revised(cat.titles, 0.01, rng, f" [{i}]")
        producer.run_incremental(lambda inc, e=edits: [inc.add_or_modify(t) for t in e])  # type: ignore[misc]
    consumer = store.Consumer(blobs, announcer, max_delta_chain=deltas + 1)
    first = min(r.version for r in blobs.refs() if r.kind == "snapshot")
    consumer.refresh(first)
    consumer.state["Title"].get(cat.titles[0].id)  # the key index is in use, so it is carried
    keys = [t.id for t in cat.titles]
    stop = threading.Event()
    worst = [0.0]

    def reader() -> None:
        r = random.Random(threading.get_ident())
        last = time.perf_counter()
        while not stop.is_set():
            v = consumer.state["Title"].get(r.choice(keys))
            _ = v.title if v is not None else None
            now = time.perf_counter()
            worst[0] = max(worst[0], now - last)
            last = now

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    worst[0] = 0.0
    started = time.perf_counter()
    consumer.refresh()  # applies every delta in turn
    applied = time.perf_counter() - started
    time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    return {"read_stall_max_ms": round(worst[0] * 1e3, 2), "deltas_applied_s": round(applied, 3)}


def run(titles: int, cycles: int) -> dict[str, Any]:
    out: dict[str, Any] = {"titles": titles, "cycles": cycles}
    out.update(propagation("fs", min(titles, 100_000), cycles))
    if _nats_up():
        out.update(propagation("nats", min(titles, 100_000), cycles))
    else:
        out["propagation_p99_ms_nats"] = None  # no NATS server on 127.0.0.1:4222
    out.update(read_stall(titles, 5))
    out["shared_pss_ratio_4_workers"] = None  # not measured yet (issue 3)
    out["reload_peak_ratio"] = None  # not measured yet (issue 3)
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--titles", type=int, default=1_000_000)
    p.add_argument("--cycles", type=int, default=50)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = run(a.titles, a.cycles)
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
