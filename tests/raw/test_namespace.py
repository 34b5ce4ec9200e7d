"""Namespaces on the filesystem: writer and clients in separate processes, failover, clone, restore."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from raw_stack import SCHEMA, title

from marrow import store
from marrow.errors import IncompatibleSchemaError, LeaseError
from marrow.raw import Upsert
from marrow.raw.namespace import Namespace
from marrow.records import Story, Title

SPAWN = multiprocessing.get_context("spawn")


def _read_in_child(directory: str, offset: int, pipe: Connection) -> None:
    with Namespace(directory, SCHEMA).client() as client:
        view = client.view(offset=offset)
        pipe.send([view["Title"].get(i).name for i in range(1, 4)])
        pipe.send(client.view("strong")["Title"].get(9) is not None)


def test_a_client_in_another_process_reads_what_the_writer_acknowledged(tmp_path: Path) -> None:
    ns = Namespace(tmp_path / "content", SCHEMA)
    with ns.writer(fold=False) as writer:
        offset = writer.bulk_update([Upsert(title(i, f"T{i}")) for i in range(1, 4)])
        writer.folder.fold()  # type: ignore[union-attr]
        writer.bulk_update([Upsert(title(9))])
        ours, theirs = SPAWN.Pipe()
        child = SPAWN.Process(target=_read_in_child, args=(str(ns.directory), offset, theirs))
        child.start()
        assert ours.poll(60)
        assert ours.recv() == ["T1", "T2", "T3"]
        assert ours.recv() is True
        child.join(10)
    assert ns.announced() == 1
    assert sorted(p.name for p in ns.directory.iterdir()) == [
        "blobs",
        "lease.epoch",
        "lease.lock",
        "log",
        "schema.txt",
    ]


def _hold_the_writer(directory: str, pipe: Connection) -> None:
    writer = Namespace(directory, SCHEMA).writer(fold=False)
    offset = writer.bulk_update([Upsert(title(1, "before the crash"))])
    pipe.send(offset)
    time.sleep(600)


def test_a_standby_takes_over_when_the_writer_dies(tmp_path: Path) -> None:
    ns = Namespace(tmp_path / "content", SCHEMA)
    ours, theirs = SPAWN.Pipe()
    first = SPAWN.Process(target=_hold_the_writer, args=(str(ns.directory), theirs))
    first.start()
    assert ours.poll(60)
    acked = ours.recv()
    with pytest.raises(LeaseError, match="another writer holds the lease"):
        ns.writer(timeout=0.2)
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    first.join(10)
    started = time.monotonic()
    with ns.writer(timeout=10, fold=False) as standby:
        assert time.monotonic() - started < 5  # the lock went with the process
        assert standby.epoch == 2
        assert standby.view()["Title"].get(1).name == "before the crash"
        assert standby.bulk_update([Upsert(title(2))]) > acked


def test_clone_links_blobs_and_restore_brings_the_records_back(tmp_path: Path) -> None:
    ns = Namespace(tmp_path / "content", SCHEMA)
    with ns.writer(fold=False) as writer:
        writer.bulk_update([Upsert(title(1, "original")), Upsert(title(2))])
        writer.folder.fold()  # type: ignore[union-attr]
        writer.bulk_update([Upsert(title(3, "in flight"))])
        copy = ns.clone(tmp_path / "copy")
        writer.bulk_update([Upsert(title(1, "changed after the clone")), Upsert(title(4))])
    (snapshot,) = (ns.blob_dir).glob("snapshot-*")
    assert os.stat(snapshot).st_ino == os.stat(copy.blob_dir / snapshot.name).st_ino  # zero-copy
    with copy.client() as client:
        view = client.view("strong")
        assert view["Title"].get(1).name == "original" and view["Title"].get(3).name == "in flight"
        assert view["Title"].get(4) is None
    version = ns.restore(copy)
    with ns.client() as client:
        view = client.view("strong")
        assert view.version == version
        assert view["Title"].get(1).name == "original" and view["Title"].get(4) is None
        assert sorted(r.id for r in view["Title"]) == [1, 2, 3]
    with ns.writer(fold=False) as writer:  # and writing goes on from there
        writer.bulk_update([Upsert(title(5))])
        assert len(writer.view()["Title"]) == 4


def test_namespaces_side_by_side_keep_to_themselves(tmp_path: Path) -> None:
    a, b = Namespace(tmp_path / "a", SCHEMA), Namespace(tmp_path / "b", SCHEMA)
    with a.writer(fold=False) as wa, b.writer(fold=False) as wb:
        wa.bulk_update([Upsert(title(1, "in a"))])
        wb.bulk_update([Upsert(title(1, "in b"))])
    with a.client() as ca, b.client() as cb:
        assert ca.view("strong")["Title"].get(1).name == "in a"
        assert cb.view("strong")["Title"].get(1).name == "in b"


def test_a_namespace_refuses_an_incompatible_schema(tmp_path: Path) -> None:
    ns = Namespace(tmp_path / "content", SCHEMA)
    with ns.writer(fold=False):
        pass
    changed = store.Schema.parse(SCHEMA.text.replace("long added;", "string added;"))
    with pytest.raises(IncompatibleSchemaError):
        Namespace(tmp_path / "content", changed)
    fewer = store.Schema.from_classes(Title, Story)
    assert Namespace(tmp_path / "content", fewer).schema is fewer  # a compatible change
