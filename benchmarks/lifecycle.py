"""Lifecycle benchmark: how fast a version reaches another process, how long readers stall while
versions change, and what memory worker processes that share versions use.

* ``propagation_p99_ms_fs`` / ``_nats`` — a producer announces small incremental versions; a consumer in
  another process (background refresh on announcements) serves each; p99 of announcement → served, on
  the filesystem store (inotify) and on NATS JetStream (KV watch, the delta carried in the
  announcement), when the server is reachable; ``propagation_max_ms_*`` the slowest.
* ``read_stall_max_ms`` — a worker process (``SharedConsumer``) with one reader thread reading random
  records by key in a loop, while a host consumer process applies deltas from the "real" store and the
  worker switches versions by mapping; the reader's longest gap between two reads. The host
  consumer's directory is on tmpfs (``/dev/shm``) where there is one, as docs/lifecycle.md advises.
  ``read_stall_baseline_max_ms`` is the same reader's longest gap over as long a window with no
  refresh, just before each switch; ``..._windows_over_1ms`` how many of either kind of window had a
  gap over 1 ms; ``read_stall_max_ms_in_process`` the peer: the same reader while its own process applies
  two 1 % deltas, with the consumer's short GIL turns (docs/lifecycle.md), and ``..._long_turns``
  with CPython's switch interval left at 5 ms (the GIL convoy).
* ``shared_pss_ratio_4_workers`` — total PSS of 4 workers serving one version, deltas still arriving,
  over one worker alone, each net of an idle interpreter's PSS (what the store costs);
  ``..._whole_processes`` without that subtraction; ``heap_pss_ratio_4_workers`` the peer: workers
  that each hold their version in the heap.
* ``reload_peak_ratio`` — peak RSS (VmHWM, reset before the move) of a worker while it moves to the
  next version and reads it all, over its steady RSS after reading all of the previous one: mapped
  (the figure), and the peers: in the heap (bytes, as from NATS or S3) and spooled through a file.

Prints one JSON object. Run: ``marrow bench lifecycle --json``.
"""

from __future__ import annotations

import gc
import json
import mmap
import multiprocessing as mp
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from typing import Any

import numpy as np
import psutil

from marrow import sample, store
from marrow.store.filesystem import (
    FilesystemAnnouncementWatcher,
    FilesystemAnnouncer,
    FilesystemBlobStore,
    MappedFile,
)
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


def propagation(kind: str, titles: int, cycles: int, snapshot_every: int = 1) -> dict[str, float]:
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

            def announce_delta(self, ref: store.BlobRef, data: Any) -> None:
                if isinstance(announcer, store.DeltaCarrier):  # on NATS: the delta rides along
                    announcer.announce_delta(ref, data)
                else:
                    announcer.announce(ref.version)
                announced[ref.version] = time.time()

        producer = store.Producer(schema, blobs, Timed(), keep_snapshots=3, snapshot_every=snapshot_every)
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
        f"propagation_max_ms_{kind}": round(lags[-1], 2),
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


def read_stall_in_process(titles: int, deltas: int) -> dict[str, float]:
    """The peer: a reader thread in the process that applies the deltas itself — with the consumer's
    short GIL turns (the default), and with CPython's 5 ms switch interval left alone (the GIL convoy)."""
    titles_ = sample.catalogue(titles).titles
    schema = store.Schema.from_classes(sample.Title)
    blobs = InMemoryBlobStore()
    announcer = InMemoryAnnouncer()
    producer = store.Producer(schema, blobs, announcer, integrity_check=False)
    producer.run_cycle(lambda w: w.add_all(titles_))
    rng = random.Random(9)
    for i in range(deltas):
        edits = sample.revised(titles_, 0.01, rng, f" [{i}]")
        producer.run_incremental(lambda inc, e=edits: [inc.add_or_modify(t) for t in e])  # type: ignore[misc]
    first = min(r.version for r in blobs.refs() if r.kind == "snapshot")
    some = titles_[0].id
    keys = np.array([t.id for t in titles_], dtype=np.int64)  # not a list the collector would walk
    titles_.clear()  # a million records the collector would walk: the peer's reader stalls on ours alone

    def measure(**options: Any) -> tuple[float, float]:
        consumer = store.Consumer(blobs, announcer, max_delta_chain=deltas + 1, **options)
        consumer.refresh(first)
        consumer.state["Title"].get(some)  # the key index is in use, so it is carried
        stall = _Stall()  # the reader of the worker processes, here beside the delta application
        stall.start(consumer, keys)
        try:
            time.sleep(0.2)
            stall.take()
            started = time.perf_counter()
            consumer.refresh()  # applies every delta in turn
            applied = time.perf_counter() - started
            time.sleep(0.1)
            return stall.take()[0], applied
        finally:
            stall.stop()

    short, long_ = measure(), measure(switch_interval=None)
    return {
        "read_stall_max_ms_in_process": round(short[0] * 1e3, 2),
        "deltas_in_process_s": round(short[1], 3),
        "read_stall_max_ms_in_process_long_turns": round(long_[0] * 1e3, 2),
        "deltas_in_process_s_long_turns": round(long_[1], 3),
    }


# --- versions shared across worker processes (store.host) -----------------------------------------------


class Held:
    """An announcer that announces nothing: blobs are published ahead, announced during a measurement."""

    def announce(self, version: int) -> None:
        pass


class Shared:
    """A producer's blobs in a "real" store directory (published ahead, announced on demand), a host
    consumer process following it, and a local directory of shared snapshots."""

    def __init__(self, root: str, titles: int, versions: int, share: float, local: str = "") -> None:
        self.real, self.local = f"{root}/real", local or f"{root}/local"
        self.cat = sample.catalogue(titles)
        schema = store.Schema.from_classes(sample.Title)
        blobs = FilesystemBlobStore(self.real)
        producer = store.Producer(schema, blobs, Held(), integrity_check=False, keep_snapshots=versions + 1)
        first = producer.run_cycle(lambda w: w.add_all(self.cat.titles))
        assert first is not None
        self.versions = [first.version]
        rng = random.Random(3)
        for i in range(versions):
            edits = sample.revised(self.cat.titles, share, rng, f" <{i}>")
            report = producer.run_incremental(lambda inc, e=edits: [inc.add_or_modify(t) for t in e])  # type: ignore[misc]
            assert report is not None
            self.versions.append(report.version)
        self.announcer = FilesystemAnnouncer(self.real)
        self.announcer.announce(first.version)
        self.announced = 0  # index into versions
        self.ctx = mp.get_context("spawn")
        self.stop = self.ctx.Event()
        self.host = self.ctx.Process(target=_host, args=(self.real, self.local, self.stop))
        self.host.start()
        _wait_file(f"{self.local}/snapshot-{first.version}")

    def next_version(self) -> int:
        """Announce the next version in the real store; return it once the host consumer shared it."""
        self.announced += 1
        version = self.versions[self.announced]
        self.announcer.announce(version)
        return version

    def close(self) -> None:
        self.stop.set()
        self.host.join(30)


def _host(real: str, local: str, stop: Any) -> None:
    from marrow.store.host import HostConsumer

    HostConsumer(FilesystemBlobStore(real), FilesystemAnnouncementWatcher(real), local).run(stop)


def _wait_file(path: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


class Worker:
    """A serving worker in a process of its own, driven by commands over a pipe."""

    def __init__(
        self, shared: Shared, path: str = "mapped", freeze: bool = False, directory: str = ""
    ) -> None:
        self.conn, child = shared.ctx.Pipe()
        self.reached = shared.ctx.Value("q", 0)
        args = (directory or shared.local, child, self.reached, path, freeze)
        self.process = shared.ctx.Process(target=_work, args=args)
        self.process.start()
        assert self.call("ready") == "ready"

    def call(self, command: str, arg: Any = None) -> Any:
        self.conn.send((command, arg))
        return self.conn.recv()

    def wait_for(self, version: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.reached.value < version:
            if time.monotonic() > deadline:
                raise TimeoutError(f"a worker did not reach version {version} within {timeout} s")
            time.sleep(0.002)

    def close(self) -> None:
        self.call("stop")
        self.process.join(30)


class _BytesRetriever(FilesystemBlobStore):
    """A retriever that hands out blobs as bytes in the heap, as the NATS and S3 stores do; with
    ``spool``, as NATS does with a spool directory: copied chunk by chunk to an unnamed local file,
    handed out mapped."""

    def __init__(self, directory: str, spool: str | None = None) -> None:
        super().__init__(directory)
        self.spool = spool

    def _read(self, ref: store.BlobRef) -> Any:
        try:
            with open(self.directory / ref.name, "rb") as source:
                if self.spool is None:
                    return source.read()
                with tempfile.TemporaryFile(dir=self.spool) as copy:
                    shutil.copyfileobj(source, copy, 128 * 1024)  # the NATS store's chunk size
                    copy.flush()
                    return MappedFile(copy.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            return None


def _work(local: str, conn: Any, reached: Any, path: str, freeze: bool) -> None:
    """A worker following the local directory: ``mapped`` (a shared consumer), ``heap`` (a consumer
    of bytes, as from NATS or S3), ``spooled`` (bytes through a local file), or ``idle`` (nothing:
    the interpreter alone)."""
    from marrow.store.host import SharedConsumer

    consumer: store.Consumer | None = None
    listen = [lambda _old, new: setattr(reached, "value", new.version)]
    if path == "mapped":
        consumer = SharedConsumer(local, listeners=tuple(listen))
    elif path in ("heap", "spooled"):
        spool = tempfile.mkdtemp(prefix="marrow-spool-") if path == "spooled" else None
        consumer = store.Consumer(
            _BytesRetriever(local, spool),
            FilesystemAnnouncementWatcher(local),
            max_delta_chain=0,
            listeners=listen,
            release_delay=0.1,  # superseded versions given back as a shared consumer does
        )
    if consumer is not None:
        consumer.start()
        if freeze:  # as a prefork server does once its application is loaded (docs/lifecycle.md)
            consumer.wait_for(1, 300)
            gc.freeze()
    stall = _Stall()
    while True:
        command, arg = conn.recv()
        if command == "ready":
            conn.send("ready")
        elif command == "warm":  # read every record's fields, and random ones by key: every page touched
            assert consumer is not None
            _warm(consumer.state["Title"])
            conn.send(_memory())
        elif command == "memory":
            conn.send(_memory())
        elif command == "reset_peak":  # VmHWM starts again from the current RSS (Linux, 4.0+)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            conn.send(_memory())
        elif command == "read":  # a reader thread reading random records by key, timing its gaps
            assert consumer is not None
            stall.start(consumer, arg)
            conn.send(True)
        elif command == "worst":
            conn.send(stall.take())
        elif command == "stop":
            stall.stop()
            if consumer is not None:
                consumer.close()
            conn.send(True)
            return


def _warm(titles: store.TypeReader) -> None:
    """Read every record's fields in small batches (little garbage), and 20,000 by key."""
    import numpy as np

    for start in range(0, titles.data.capacity, 2_000):
        titles.read(
            np.arange(start, min(start + 2_000, titles.data.capacity)), ["title", "synopsis", "year", "cast"]
        )
    for key in np.random.default_rng(1).integers(0, len(titles), 20_000).tolist():
        titles.get(key)


class _Stall:
    """One reader thread; :meth:`take` returns the worst gap between two reads since the last take."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.reads = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, consumer: store.Consumer, keys: list[int] | np.ndarray) -> None:
        # in a numpy array, not a list: the collector would walk a million-element list in every
        # collection that its generation takes part in, a stall of the benchmark's own making
        held, n = np.array(keys, dtype=np.int64), len(keys)

        def read() -> None:
            r = random.Random(1)
            last = time.perf_counter()
            while not self._stop.is_set():
                v = consumer.state["Title"].get(held[r.randrange(n)].item())
                _ = v.title if v is not None else None
                now = time.perf_counter()
                if now - last > self.worst:
                    self.worst = now - last
                self.reads += 1
                last = now

        self._thread = threading.Thread(target=read, name="reader", daemon=True)
        self._thread.start()

    def take(self) -> tuple[float, int]:
        worst, reads = self.worst, self.reads
        self.worst, self.reads = 0.0, 0
        return worst, reads

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _memory() -> dict[str, float]:
    """This process's RSS, PSS and peak RSS (VmHWM), in MB."""
    info = psutil.Process().memory_full_info()
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return {"rss": info.rss / 1e6, "pss": info.pss / 1e6, "hwm": hwm * 1024 / 1e6}


def read_stall(
    shared: Shared, switches: int, window: float, freeze: bool = False, alone: bool = False
) -> dict[str, Any]:
    """One reader thread in a worker; per switch, its worst gap over ``window`` seconds with no refresh
    and then over the switch (announce → mapped → ``window`` more), so that each switch has a quiet
    peer from the same moment: on a shared machine, what other processes do moves both alike.

    With ``alone``, the worker follows a directory of its own into which each version is linked once
    the host consumer has shared it and settled: the switch alone, without the host consumer's
    compute on the same cores (this machine has two)."""
    view = os.path.join(shared.local, "view")  # inside it: the same filesystem, for links
    if alone:
        _expose(shared, view, shared.versions[shared.announced])
    worker = Worker(shared, freeze=freeze, directory=view if alone else "")
    quiet: list[float] = []
    switching: list[float] = []
    reads = 0
    try:
        worker.wait_for(shared.versions[shared.announced])
        worker.call("warm")
        worker.call("read", [t.id for t in shared.cat.titles])
        time.sleep(0.5)
        worker.call("worst")
        started = time.monotonic()
        for _ in range(switches):
            if alone:  # the host consumer computes and shares the version before the quiet window
                version = shared.next_version()
                _wait_announced(shared.local, version)
                time.sleep(0.5)  # it cleans up, then is idle
            worker.call("worst")  # a fresh quiet window starts here
            time.sleep(window)
            worst, n = worker.call("worst")
            quiet.append(worst)
            reads += n
            if alone:
                _expose(shared, view, version)
            else:
                version = shared.next_version()
            worker.wait_for(version)
            time.sleep(window)
            worst, n = worker.call("worst")
            switching.append(worst)
            reads += n
        elapsed = time.monotonic() - started
    finally:
        worker.close()
    suffix = ("_alone" if alone else "") + ("_frozen" if freeze else "")
    return {
        f"read_stall_max_ms{suffix}": round(max(switching) * 1e3, 2),
        f"read_stall_baseline_max_ms{suffix}": round(max(quiet) * 1e3, 2),
        f"read_stall_median_ms{suffix}": round(statistics.median(switching) * 1e3, 2),
        f"read_stall_baseline_median_ms{suffix}": round(statistics.median(quiet) * 1e3, 2),
        f"read_stall_reads_per_s{suffix}": round(reads / elapsed),  # the reader's pace, both windows
        # how many windows had a gap over the target: the switch's own share beside the machine's
        f"read_stall_windows_over_1ms{suffix}": sum(w > 1e-3 for w in switching),
        f"read_stall_baseline_windows_over_1ms{suffix}": sum(w > 1e-3 for w in quiet),
    }


def _wait_announced(directory: str, version: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while FilesystemAnnouncementWatcher(directory).latest() != version:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{directory} did not announce {version} within {timeout} s")
        time.sleep(0.01)


def _expose(shared: Shared, view: str, version: int) -> None:
    """Link the host consumer's snapshot of ``version`` into ``view`` and announce it there."""
    os.makedirs(view, exist_ok=True)
    _wait_announced(shared.local, version)
    target = os.path.join(view, f"snapshot-{version}")
    if not os.path.exists(target):
        os.link(os.path.join(shared.local, f"snapshot-{version}"), target)
    FilesystemAnnouncer(view).announce(version)


def shared_pss(shared: Shared, workers: int) -> dict[str, Any]:
    """Total PSS of ``workers`` workers serving one version as deltas arrive, vs one worker alone;
    beside it, the same for workers that hold their version in the heap (the peer), and for idle
    interpreters (what no store can share: Python itself)."""

    def total(path: str, n: int, versions: int) -> float:
        group = [Worker(shared, path) for _ in range(n)]
        try:
            if path == "idle":
                return sum(w.call("memory")["pss"] for w in group)
            for w in group:
                w.wait_for(shared.versions[shared.announced])
            for _ in range(versions):  # deltas still arriving: the host consumer computes, workers map
                version = shared.next_version()
                for w in group:
                    w.wait_for(version)
                    w.call("warm")
            return sum(w.call("warm")["pss"] for w in group)
        finally:
            for w in group:
                w.close()

    alone, many = total("mapped", 1, 1), total("mapped", workers, 2)
    idle_alone, idle_many = total("idle", 1, 0), total("idle", workers, 0)
    heap_alone, heap_many = total("heap", 1, 1), total("heap", workers, 1)
    return {
        f"shared_pss_ratio_{workers}_workers": round((many - idle_many) / (alone - idle_alone), 3),
        f"shared_pss_ratio_{workers}_workers_whole_processes": round(many / alone, 3),
        f"heap_pss_ratio_{workers}_workers": round((heap_many - idle_many) / (heap_alone - idle_alone), 3),
        "pss_mb": {
            "shared_1": round(alone, 1),
            f"shared_{workers}": round(many, 1),
            "idle_1": round(idle_alone, 1),
            f"idle_{workers}": round(idle_many, 1),
            "heap_1": round(heap_alone, 1),
            f"heap_{workers}": round(heap_many, 1),
        },
    }


def reload_peak(shared: Shared) -> dict[str, Any]:
    """Peak RSS while a worker moves to the next version (warm on both sides) over its steady RSS:
    mapped snapshots (a shared consumer), snapshots read into the heap (as from NATS or S3), and
    snapshots spooled through a local file (as ``NatsBlobStore(spool=...)`` does)."""
    out: dict[str, Any] = {}
    for path in ("mapped", "heap", "spooled"):
        worker = Worker(shared, path)
        try:
            worker.wait_for(shared.versions[shared.announced])
            worker.call("warm")
            steady = worker.call("reset_peak")["rss"]
            worker.wait_for(shared.next_version())
            after = worker.call("warm")
        finally:
            worker.close()
        out[f"reload_peak_ratio_{path}"] = round(after["hwm"] / steady, 3)
        out[f"reload_steady_rss_mb_{path}"] = round(steady, 1)
    out["reload_peak_ratio"] = out["reload_peak_ratio_mapped"]
    return out


def _memory_directory() -> str | None:
    """Where the host consumer's directory goes, as docs/lifecycle.md advises: tmpfs, where its
    snapshots are memory the workers share, never written back to a disk (None: the default)."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def run(titles: int, cycles: int) -> dict[str, Any]:
    out: dict[str, Any] = {"titles": titles, "cycles": cycles}
    out.update(propagation("fs", min(titles, 100_000), cycles))
    if _nats_up():
        out.update(propagation("nats", min(titles, 100_000), cycles))
    else:
        out["propagation_p99_ms_nats"] = None  # no NATS server on 127.0.0.1:4222
    switches = 10
    with (
        tempfile.TemporaryDirectory(prefix="marrow-shared-") as root,
        tempfile.TemporaryDirectory(prefix="marrow-local-", dir=_memory_directory()) as local,
    ):
        shared = Shared(root, titles, versions=4 * switches + 8, share=0.001, local=local)
        try:
            out.update(read_stall(shared, switches, window=0.4))
            out.update(read_stall(shared, switches, window=0.4, freeze=True))
            out.update(read_stall(shared, switches, window=0.4, alone=True))
            out.update(read_stall(shared, switches, window=0.4, freeze=True, alone=True))
            out["read_stall_switches"] = switches
            out.update(shared_pss(shared, 4))
            out.update(reload_peak(shared))
        finally:
            shared.close()
    out.update(read_stall_in_process(titles, 2))
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--titles", type=int, default=1_000_000)
    p.add_argument("--cycles", type=int, default=200)  # so that p99 is not simply the slowest
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    result = run(a.titles, a.cycles)
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
