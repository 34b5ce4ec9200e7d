"""Namespaces: datasets side by side under one root, each with its own log, blobs, lease and writer.

Embedded layout (no servers)::

    root/<name>/log/          write log segments            (FileWriteLog)
    root/<name>/blobs/        snapshots, deltas, announced.json   (FilesystemBlobStore, -Announcer)
    root/<name>/lease.lock    the writer lease              (FileLease), lease.epoch beside it
    root/<name>/schema.txt    the schema, in its text form, written by the first writer

Lifecycle::

    ns = Namespace(root / "content", schema)
    with ns.writer() as writer:         # lease, restore, recover; folds in the background
        writer.bulk_update(...)
    with ns.client() as client:         # any process on the host
        client.view()["Title"].get(7)
    copy = ns.clone(root / "content-before-migration")   # blobs hard-linked, log copied
    ns.restore(copy)                    # a new version of ns holding what the copy holds

A namespace refuses to open with a schema other than the one it was created with unless the change
is compatible (``Schema.check_compatible``); the new text is then recorded.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

from marrow.errors import WriteError
from marrow.raw.client import LocalClient
from marrow.raw.filelog import FileWriteLog
from marrow.raw.fold import Folder
from marrow.raw.lease import FileLease
from marrow.raw.overlay import FOLDED_OFFSET
from marrow.raw.writer import Writer
from marrow.store import Consumer, Producer, ReadState, Schema, WriteState
from marrow.store.filesystem import FilesystemAnnouncementWatcher, FilesystemAnnouncer, FilesystemBlobStore

__all__ = ["Namespace"]


class Namespace:
    """One dataset in ``directory``; see the module docstring."""

    def __init__(self, directory: str | os.PathLike[str], schema: Schema):
        self.directory = Path(directory)
        self.schema = schema
        self.name = self.directory.name
        self.log_dir = self.directory / "log"
        self.blob_dir = self.directory / "blobs"
        self._check_schema()

    def __repr__(self) -> str:
        return f"Namespace({str(self.directory)!r})"

    def _check_schema(self) -> None:
        path = self.directory / "schema.txt"
        if not path.exists():
            return
        recorded = Schema.parse(path.read_text(encoding="utf-8"))
        if recorded.fingerprint != self.schema.fingerprint:
            recorded.check_compatible(self.schema)

    def _record_schema(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "schema.txt").write_text(self.schema.text, encoding="utf-8")

    # --- roles -----------------------------------------------------------------------------------

    def blobs(self) -> FilesystemBlobStore:
        return FilesystemBlobStore(self.blob_dir)

    def announced(self) -> int | None:
        """The announced version, or None before the first fold."""
        with FilesystemAnnouncementWatcher(self.blob_dir) as watcher:
            return watcher.latest()

    def writer(
        self,
        *,
        timeout: float | None = None,
        fold_interval: float = 30.0,
        fold_entries: int = 10_000,
        fold: bool = True,
        **producer_options: Any,
    ) -> Writer:
        """The started writer of this namespace, folding in the background (``fold=False``: not).

        Waits up to ``timeout`` seconds for the lease (None: stand by until the holder dies)."""
        log = FileWriteLog(self.log_dir, writable=False)  # opened for appending once the lease is held
        blobs = self.blobs()
        producer = Producer(self.schema, blobs, FilesystemAnnouncer(self.blob_dir), **producer_options)
        writer = Writer(self.schema, log, FileLease(self.directory))

        def restore() -> ReadState | None:
            writer.log = FileWriteLog(self.log_dir, writable=True)
            self._record_schema()
            announced = self.announced()
            return producer.restore(blobs, announced) if announced is not None else None

        writer.start(restore, timeout)
        folder = Folder(
            producer, writer.log, interval=fold_interval, max_entries=fold_entries, on_fold=writer.rebase
        )
        writer.folder = folder
        if fold:
            folder.start()
        writer.on_close.append(folder.close)
        writer.on_close.append(writer.log.close)  # type: ignore[attr-defined]
        return writer

    def client(self, *, timeout: float = 5.0, start: bool = True) -> LocalClient:
        """A local client of this namespace (started: base loaded, log tailed)."""
        watcher = FilesystemAnnouncementWatcher(self.blob_dir)
        consumer = Consumer(self.blobs(), watcher)
        log = FileWriteLog(self.log_dir)
        client = LocalClient(self.schema, consumer, log, timeout=timeout)
        client.on_close += [consumer.close, watcher.close, log.close]
        return client.start() if start else client

    # --- clone and restore -----------------------------------------------------------------------

    def clone(self, target: str | os.PathLike[str]) -> Namespace:
        """A new namespace in ``target`` holding what this one holds now: blobs hard-linked (zero
        copies where the filesystem allows; copied where it does not), sealed log segments hard-linked
        and the active one copied. Safe while a writer runs: a blob never changes, and a log entry
        the copy cut short is dropped."""
        target = Path(target)
        if target.exists() and any(target.iterdir()):
            raise WriteError(f"cannot clone {self.name} into {target}: it exists and is not empty")
        (target / "blobs").mkdir(parents=True, exist_ok=True)
        (target / "log").mkdir(parents=True, exist_ok=True)
        announcement = self.blob_dir / "announced.json"
        if announcement.exists():  # first, so every blob it names is linked below
            shutil.copy2(announcement, target / "blobs" / "announced.json")
        for entry in sorted(self.blob_dir.iterdir()) if self.blob_dir.exists() else []:
            if entry.name.startswith(".") or entry.name == "announced.json":
                continue
            _link_or_copy(entry, target / "blobs" / entry.name)
        segments = sorted(p for p in self.log_dir.glob("*.log")) if self.log_dir.exists() else []
        for i, segment in enumerate(segments):
            if i < len(segments) - 1:
                _link_or_copy(segment, target / "log" / segment.name)  # sealed: never written again
            else:  # the active segment: copied; a frame the copy cut short is cut off just below
                shutil.copyfile(segment, target / "log" / segment.name)
        FileWriteLog(target / "log", writable=True).close()  # recovers the copy's tail, marks it durable
        if (self.directory / "schema.txt").exists():
            shutil.copy2(self.directory / "schema.txt", target / "schema.txt")
        return Namespace(target, self.schema)

    def restore(self, source: Namespace, *, timeout: float | None = 10.0) -> int:
        """Make ``source``'s records (its announced version and in-flight writes) the records of this
        namespace, as a new version; returns the version. Takes the writer lease for the while: stop
        this namespace's writer first. Clients follow as with any version."""
        with source.client() as reader:
            view = reader.view("strong")
            records = {name: list(view[name]) for name in view}
        with self.writer(timeout=timeout, fold=False) as writer:
            folder = writer.folder
            assert folder is not None
            folder.fold()
            producer = folder.producer

            def populate(write: WriteState) -> None:
                for name, rows in records.items():
                    for record in rows:
                        write.add(record, name)

            report = producer.run_cycle(populate, meta={FOLDED_OFFSET: writer.log.last_offset()})
            if report is None:
                return producer.state.version if producer.state is not None else 0  # same records
            assert producer.state is not None
            writer.rebase(producer.state)
            return report.version


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        shutil.copy2(source, target)
