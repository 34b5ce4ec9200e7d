"""The writer: validation, conditional bulk updates, idempotency, recovery, fencing, group commit."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from raw_stack import SCHEMA, Stack, story, title

from marrow import store
from marrow.errors import (
    ConflictError,
    FencedError,
    LeaseError,
    LogError,
    RecordError,
    SchemaError,
    WriteError,
)
from marrow.raw import Delete, Expect, InMemoryLease, InMemoryWriteLog, Upsert, Writer
from marrow.raw.ops import BulkUpdate


def entries(stack: Stack) -> list[BulkUpdate]:
    return [BulkUpdate.decode(e.payload) for e in stack.log.read(0, limit=100_000)]


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ops", "error", "message"),
    [
        ([Upsert({"id": 1}, type="Nope")], SchemaError, "no type 'Nope'"),
        ([Upsert({"id": 1, "nmae": "x"}, type="Title")], RecordError, "no field 'nmae'"),
        ([Upsert({"id": 1, "year": "2020"}, type="Title")], RecordError, r"Title.year is a int"),
        ([Upsert({"id": 1, "year": 2**40}, type="Title")], RecordError, "outside"),
        ([Upsert({"name": "no key"}, type="Title")], RecordError, "primary key Title.id .* is null"),
        ([Upsert({"id": 1})], RecordError, "needs its type"),
        ([Upsert(title(1)), Delete("Title", 1)], RecordError, "names Title 1 twice"),
        ([Delete("Title", "one")], RecordError, "Title.id is a long"),
        ([Delete("Title", (1, 2))], RecordError, "does not fit"),
        (["not an op"], RecordError, "Upsert and Delete"),
    ],
)
def test_an_invalid_bulk_update_is_refused_whole(
    stack: Stack, ops: list[object], error: type, message: str
) -> None:
    before = stack.log.last_offset()
    with pytest.raises(error, match=message):
        stack.writer.bulk_update([Upsert(title(99)), *ops])  # type: ignore[list-item]
    assert stack.log.last_offset() == before
    assert stack.writer.view()["Title"].get(99) is None


def test_a_mapping_writes_like_the_dataclass(stack: Stack) -> None:
    t = title(5)
    as_mapping = {f: getattr(t, f) for f in SCHEMA["Title"].field_names}
    stack.writer.bulk_update([Upsert(as_mapping, type="Title")])
    assert (
        stack.client.view("strong")["Title"].get(5).to_dict() == stack.client.view()["Title"].get(5).to_dict()
    )
    assert stack.client.view()["Title"].get(5).countries == frozenset({"GB", "US"})


# --- conditional bulk updates ------------------------------------------------------------------------


def test_expectations_that_hold_let_the_update_through(stack: Stack) -> None:
    w = stack.writer
    w.bulk_update([Upsert(title(1, revision_name := "One"))])
    offset = w.bulk_update(
        [Upsert(title(1, "One, again")), Upsert(title(2))],
        expect=[
            Expect.exists("Title", 1),
            Expect.absent("Title", 2),
            Expect.values("Title", 1, name=revision_name, genres=["drama"], countries={"US", "GB"}),
            Expect.unchanged_since("Title", 1, w.offset),
        ],
    )
    assert stack.client.view(offset=offset)["Title"].get(1).name == "One, again"


def test_a_failed_expectation_refuses_everything_and_names_every_conflict(stack: Stack) -> None:
    w = stack.writer
    first = w.bulk_update([Upsert(title(1)), Upsert(title(2))])
    w.bulk_update([Upsert(title(2, "Changed"))])
    before = w.offset
    with pytest.raises(ConflictError) as caught:
        w.bulk_update(
            [Upsert(title(3)), Delete("Title", 1)],
            expect=[
                Expect.absent("Title", 1),
                Expect.exists("Title", 3),
                Expect.values("Title", 2, name="Title 2"),
                Expect.unchanged_since("Title", 2, first),
                Expect.values("Title", 4, name="x"),
            ],
        )
    conflicts = caught.value.conflicts
    assert [(t, k) for t, k, *_ in conflicts] == [
        ("Title", 1),
        ("Title", 3),
        ("Title", 2),
        ("Title", 2),
        ("Title", 4),
    ]
    assert "Title 1: expected absent, found present" in str(caught.value)
    assert "name='Title 2'" in str(caught.value) and "written at offset" in str(caught.value)
    assert w.offset == before
    view = stack.client.view("strong")
    assert view["Title"].get(3) is None and view["Title"].get(1) is not None


def test_concurrent_compare_and_set_lets_exactly_one_win(stack: Stack) -> None:
    w = stack.writer
    w.bulk_update([Upsert(title(1, "v0"))])
    seen = w.offset
    wins, losses = [], []
    barrier = threading.Barrier(8)

    def edit(i: int) -> None:
        barrier.wait()
        try:
            wins.append(
                w.bulk_update(
                    [Upsert(title(1, f"by {i}"))], expect=[Expect.unchanged_since("Title", 1, seen)]
                )
            )
        except ConflictError:
            losses.append(i)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7


def test_a_version_expectation_below_the_log_start_is_refused_not_guessed(stack: Stack) -> None:
    w = stack.writer
    w.bulk_update([Upsert(title(1))])
    stack.folder.fold()
    w.bulk_update([Upsert(title(2))])
    stack.folder.fold()  # truncates below the first fold's offset
    with pytest.raises(ConflictError, match="truncated"):
        w.bulk_update([Upsert(title(1, "x"))], expect=[Expect.unchanged_since("Title", 1, 0)])


def test_expectations_are_checked_against_earlier_updates_of_the_same_batch(stack: Stack) -> None:
    w = stack.writer
    results: list[object] = []
    barrier = threading.Barrier(4)

    def create(i: int) -> None:
        barrier.wait()
        try:
            results.append(w.bulk_update([Upsert(title(7, f"by {i}"))], expect=[Expect.absent("Title", 7)]))
        except ConflictError as e:
            results.append(e)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, int) for r in results) == 1


# --- references ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    __primary_key__ = "id"
    id: int
    name: str


@dataclass(frozen=True)
class Film:
    __primary_key__ = "id"
    id: int
    lead: Person


def test_a_referenced_keyed_record_can_be_added_but_not_changed_or_deleted() -> None:
    schema = store.Schema.from_classes(Film, Person)
    writer = Writer(schema, InMemoryWriteLog(), InMemoryLease().holder())
    writer.start()
    writer.bulk_update([Upsert(Film(1, Person(1, "Ann")))])
    writer.bulk_update([Upsert(Film(2, Person(1, "Ann")))])  # the same person: fine
    with pytest.raises(RecordError, match="Person 1 is referred to"):
        writer.bulk_update([Upsert(Film(3, Person(1, "Bo")))])
    with pytest.raises(RecordError, match="Person 1 is referred to"):
        writer.bulk_update([Upsert(Person(1, "Bo"))])
    with pytest.raises(RecordError, match="cannot be deleted by key"):
        writer.bulk_update([Delete("Person", 1)])
    assert writer.view()["Film"].get(1).lead.name == "Ann"


# --- idempotency, recovery, fencing ----------------------------------------------------------------


def test_a_retried_request_id_is_applied_once_and_gets_the_same_offset(stack: Stack) -> None:
    w = stack.writer
    first = w.bulk_update([Upsert(title(1))], request_id="save-1")
    again = w.bulk_update([Upsert(title(1))], request_id="save-1")
    assert first == again
    assert sum(u.request_id == "save-1" for u in entries(stack)) == 1


def test_a_new_writer_recovers_every_acknowledged_write_and_request_id(stack: Stack) -> None:
    w = stack.writer
    first = w.bulk_update([Upsert(title(1)), Upsert(title(2))], request_id="a")
    stack.folder.fold()
    acked = w.bulk_update([Upsert(title(3)), Delete("Title", 1)], request_id="b")
    w2 = stack.restart_writer()
    view = w2.view()
    assert view["Title"].get(1) is None and view["Title"].get(3) is not None and len(view["Title"]) == 2
    assert w2.bulk_update([Upsert(title(3))], request_id="b") == acked  # still recognised
    # folded, but the log keeps entries one fold longer than the version needs: recognised too
    assert w2.bulk_update([Upsert(title(4))], request_id="a") == first
    assert BulkUpdate.decode(stack.log.read(acked)[0].payload).changes == []  # the new writer's fence


def test_a_deposed_writer_cannot_append() -> None:
    log, lease = InMemoryWriteLog(), InMemoryLease()
    old = Writer(SCHEMA, log, lease.holder())
    old.start()
    old.bulk_update([Upsert(title(1))])
    old.lease.release()  # as if its lease expired while it was paused
    new = Writer(SCHEMA, log, lease.holder())
    new.start(timeout=1)
    with pytest.raises(FencedError):
        old.bulk_update([Upsert(title(2))])
    old.lease = lease.holder()  # even with a lease object that claims to hold, the log fences it
    old.lease.held = lambda: True  # type: ignore[method-assign]
    with pytest.raises(FencedError, match="deposed"):
        old.bulk_update([Upsert(title(2))])
    assert new.view()["Title"].get(2) is None


def test_a_second_writer_waits_for_the_lease() -> None:
    lease = InMemoryLease()
    first = Writer(SCHEMA, InMemoryWriteLog(), lease.holder())
    first.start()
    with pytest.raises(LeaseError):
        Writer(SCHEMA, InMemoryWriteLog(), lease.holder()).start(timeout=0.05)


def test_an_unstarted_writer_refuses(stack: Stack) -> None:
    with pytest.raises(WriteError, match="not started"):
        Writer(SCHEMA, InMemoryWriteLog(), InMemoryLease().holder()).bulk_update([Upsert(title(1))])


class FlakyLog(InMemoryWriteLog):
    """Stores a batch, then fails as a network would: the caller cannot tell it was stored."""

    fail_next = False

    def append(self, payloads: object, epoch: int) -> int:
        offset = super().append(payloads, epoch)  # type: ignore[arg-type]
        if self.fail_next:
            self.fail_next = False
            raise LogError("timed out waiting for the acknowledgement")
        return offset


def test_after_an_ambiguous_failure_the_writer_learns_what_was_stored() -> None:
    log = FlakyLog()
    writer = Writer(SCHEMA, log, InMemoryLease().holder())
    writer.start()
    log.fail_next = True
    with pytest.raises(LogError, match="timed out"):
        writer.bulk_update([Upsert(title(1))], request_id="r")
    assert writer.bulk_update([Upsert(title(1))], request_id="r") == log.last_offset()  # not twice
    assert writer.view()["Title"].get(1) is not None
    assert writer.bulk_update([Upsert(story(1, [1]))], expect=[Expect.exists("Title", 1)]) > 0


def test_many_threads_share_appends(stack: Stack) -> None:
    appends = []
    original = stack.log.append

    def counting(payloads: list[bytes], epoch: int) -> int:
        appends.append(len(payloads))
        return original(payloads, epoch)

    stack.log.append = counting  # type: ignore[method-assign]
    threads = [
        threading.Thread(
            target=lambda k=k: [stack.writer.bulk_update([Upsert(title(k * 100 + i))]) for i in range(50)]
        )
        for k in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(appends) == 400
    assert len(stack.client.view("strong")["Title"]) == 400
