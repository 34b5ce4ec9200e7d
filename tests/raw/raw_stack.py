"""What the read-after-write tests share: the content namespace's types and records, and a writer
with its folder and producer in memory plus a client of the same log (the ``stack`` fixture, which
tests/raw/conftest.py offers)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from marrow import store
from marrow.raw import Folder, InMemoryLease, InMemoryWriteLog, LocalClient, Writer
from marrow.records import Collection, Story, Title
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore

SCHEMA = store.Schema.from_classes(Title, Story, Collection)


def title(id: int, name: str = "", **changes: object) -> Title:
    """A render-ready title; ``changes`` replace fields."""
    t = Title(
        id=id,
        slug=f"title-{id}",
        name=name or f"Title {id}",
        kind="movie",
        synopsis="A story.",
        year=2020,
        maturity=13,
        runtime=100,
        genres=["drama"],
        cast=["Ann Lee"],
        countries=frozenset({"GB", "US"}),
        popularity=100,
        added=1_700_000_000,
        artwork={"tv": "https://cdn/tv.jpg", "web": "https://cdn/web.jpg", "mobile": "https://cdn/m.jpg"},
    )
    return replace(t, **changes)  # type: ignore[arg-type]


def story(id: int, titles: list[int], revision: int = 1) -> Story:
    return Story(
        id, f"story-{id}", f"Story {id}", "Summary", "[]", {"web": "u"}, titles, ["drama"], 0, revision
    )


@dataclass
class Stack:
    """A writer, its producer and folder, and a client, all in memory."""

    log: InMemoryWriteLog
    lease: InMemoryLease
    blobs: InMemoryBlobStore
    announcer: InMemoryAnnouncer
    producer: store.Producer
    writer: Writer
    folder: Folder
    client: LocalClient

    def restart_writer(self) -> Writer:
        """A new writer (and producer) after the old one is gone, as a standby takes over."""
        self.writer.close()
        self.producer = store.Producer(SCHEMA, self.blobs, self.announcer)
        self.writer = Writer(SCHEMA, self.log, self.lease.holder())

        def restore() -> store.ReadState | None:
            latest = self.announcer.latest()
            return self.producer.restore(self.blobs, latest) if latest is not None else None

        self.writer.start(restore)
        self.folder = Folder(self.producer, self.log, on_fold=self.writer.rebase)
        return self.writer


def make_stack() -> Iterator[Stack]:
    log, lease = InMemoryWriteLog(), InMemoryLease()
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = store.Producer(SCHEMA, blobs, announcer)
    writer = Writer(SCHEMA, log, lease.holder())
    writer.start()
    folder = Folder(producer, log, on_fold=writer.rebase)
    consumer = store.Consumer(blobs, announcer)
    client = LocalClient(SCHEMA, consumer, log, timeout=2.0).start()
    s = Stack(log, lease, blobs, announcer, producer, writer, folder, client)
    yield s
    client.close()
    consumer.close()
    s.writer.close()
