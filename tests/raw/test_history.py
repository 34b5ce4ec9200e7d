"""Histories under concurrency and crashes, across processes, on the embedded namespace.

* The history checker: one writer process (folding every few hundred ms) serves bulk updates to
  three worker processes, which also read through local clients of their own. Afterwards: every
  strong read saw every write acknowledged before it began; every read (strong or eventual) holds
  exactly the records the acknowledged writes up to its offset make — so no bulk update was seen in
  part; and each process's reads never went back.
* The crash test: a writer process under load (threads, folding) is killed with SIGKILL at a random
  moment, 20 times; each time a new writer recovers. Every write acknowledged before a kill is then
  present, and no request id is in the log twice, also for requests retried after the crash.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
from raw_stack import SCHEMA, title

from marrow.raw import Upsert
from marrow.raw.filelog import FileWriteLog
from marrow.raw.namespace import Namespace
from marrow.raw.ops import BulkUpdate

SPAWN = multiprocessing.get_context("spawn")
KEYS = 12

pytestmark = pytest.mark.slow


# --- the history checker ---------------------------------------------------------------------------


def _serve_writes(directory: str, pipes: list[Connection], acks: str) -> None:
    """The writer process: apply each worker's bulk updates, record every acknowledgement."""
    writer = Namespace(directory, SCHEMA).writer(fold_interval=0.3)
    lock = threading.Lock()
    with open(acks, "w") as out:

        def serve(pipe: Connection) -> None:
            while (request := pipe.recv()) is not None:
                token, keys = request
                offset = writer.bulk_update([Upsert(title(k, token)) for k in keys])
                acked = time.time()
                with lock:
                    out.write(json.dumps([offset, token, keys]) + "\n")
                pipe.send((offset, acked))

        threads = [threading.Thread(target=serve, args=(p,)) for p in pipes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    writer.close()


def _work(directory: str, pipe: Connection, worker: int, operations: int, history: str) -> None:
    """A worker process: writes through the writer, reads through its own local client."""
    rng = random.Random(worker)
    events: list[dict[str, Any]] = []
    with Namespace(directory, SCHEMA).client() as client:
        for n in range(operations):
            kind = rng.choice(["write", "strong", "eventual", "eventual"])
            began = time.time()
            if kind == "write":
                keys = rng.sample(range(KEYS), rng.randint(1, 4))
                pipe.send((f"w{worker}-{n}", keys))
                offset, acked = pipe.recv()
                events.append({"kind": "write", "offset": offset, "began": began, "acked": acked})
            else:
                view = client.view(kind)
                names = [r.name if r is not None else None for r in view["Title"].lookup(list(range(KEYS)))]
                events.append({"kind": kind, "began": began, "offset": view.offset, "names": names})
    pipe.send(None)
    Path(history).write_text(json.dumps(events))


def test_the_history_checker_finds_strong_reads_whole_and_eventual_reads_monotonic(tmp_path: Path) -> None:
    directory = str(tmp_path / "ns")
    Namespace(directory, SCHEMA).writer(fold=False).close()  # create it
    workers = 3
    pairs = [SPAWN.Pipe() for _ in range(workers)]
    acks = str(tmp_path / "acks.jsonl")
    server = SPAWN.Process(target=_serve_writes, args=(directory, [p[0] for p in pairs], acks))
    server.start()
    procs = [
        SPAWN.Process(target=_work, args=(directory, pairs[i][1], i, 150, str(tmp_path / f"h{i}.json")))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    server.join(60)
    assert server.exitcode == 0

    writes = {}  # offset -> (token, keys)
    for line in Path(acks).read_text().splitlines():
        offset, token, keys = json.loads(line)
        writes[offset] = (token, keys)
    offsets = sorted(writes)

    def state_at(offset: int) -> list[str | None]:
        names: list[str | None] = [None] * KEYS
        for o in offsets:
            if o > offset:
                break
            token, keys = writes[o]
            for k in keys:
                names[k] = token
        return names

    histories = [json.loads((tmp_path / f"h{i}.json").read_text()) for i in range(workers)]
    acked_at = {e["offset"]: e["acked"] for h in histories for e in h if e["kind"] == "write"}
    reads = 0
    for history in histories:
        seen = 0
        for event in history:
            if event["kind"] == "write":
                continue
            reads += 1
            assert event["names"] == state_at(event["offset"]), "a read saw part of a bulk update"
            if event["kind"] == "eventual":
                assert event["offset"] >= seen, "an eventual read went back"
            if event["kind"] == "strong":
                missed = [o for o, t in acked_at.items() if t < event["began"] and o > event["offset"]]
                assert missed == [], f"a strong read missed writes acknowledged before it began: {missed}"
            seen = max(seen, event["offset"])
    assert reads > 200 and len(writes) > 50


# --- the crash test --------------------------------------------------------------------------------


def _write_until_killed(directory: str, run: int, acks: str, retry: list[list[Any]]) -> None:
    """The writer process of one run: retry the given requests, then write from 4 threads."""
    writer = Namespace(directory, SCHEMA).writer(fold_interval=0.2, fold_entries=40)
    with open(acks, "a", buffering=1) as out:
        for request_id, key, offset in retry:  # a client retrying after the crash: applied once
            again = writer.bulk_update([Upsert(title(key, request_id))], request_id=request_id)
            assert again == offset or offset is None
        out.write("ready\n")

        def work(thread: int) -> None:
            for i in range(10_000):
                request_id = f"r{run}-{thread}-{i}"
                key = run * 100_000 + thread * 10_000 + i
                offset = writer.bulk_update([Upsert(title(key, request_id))], request_id=request_id)
                out.write(json.dumps([request_id, key, offset]) + "\n")

        threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def test_killing_the_writer_loses_no_acknowledged_write_and_applies_none_twice(tmp_path: Path) -> None:
    directory = str(tmp_path / "ns")
    rng = random.Random(20)
    acknowledged: dict[str, tuple[int, int]] = {}
    retry: list[list[Any]] = []
    for run in range(20):
        acks = tmp_path / f"acks-{run}.jsonl"
        child = SPAWN.Process(target=_write_until_killed, args=(directory, run, str(acks), retry))
        child.start()
        deadline = time.monotonic() + 60
        while not (acks.exists() and "ready" in acks.read_text()):
            assert time.monotonic() < deadline and child.is_alive(), "the writer did not start"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.6))
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        lines = acks.read_text().splitlines()
        recorded = [json.loads(line) for line in lines[1:] if line.endswith("]")]
        for request_id, key, offset in recorded:
            acknowledged[request_id] = (key, offset)
        retry = [[rid, key, acknowledged[rid][1]] for rid, key, _ in recorded[-5:]]
    assert len(acknowledged) > 100

    ns = Namespace(directory, SCHEMA)
    with ns.writer(fold=False) as writer:
        view = writer.view()
        missing = [rid for rid, (key, _) in acknowledged.items() if view["Title"].get(key) is None]
        assert missing == []
        assert all(view["Title"].get(key).name == rid for rid, (key, _) in acknowledged.items())
    with FileWriteLog(ns.log_dir) as log:
        ids: list[str] = []
        after = _first_retained(log)
        while entries := log.read(after, 10_000):
            ids += [u.request_id for e in entries if (u := BulkUpdate.decode(e.payload)).request_id]
            after = entries[-1].offset
    assert len(ids) == len(set(ids)), "a request id was applied twice"


def _first_retained(log: FileWriteLog) -> int:
    from marrow.errors import LogTruncatedError

    try:
        log.read(0, 1)
        return 0
    except LogTruncatedError as e:
        return e.first - 1
