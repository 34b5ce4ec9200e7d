"""The local client: eventual and strong reads, offset tokens, scopes, folding, truncation, and read
committed under concurrent writes; and folding itself."""

from __future__ import annotations

import threading

import pytest
from raw_stack import SCHEMA, Stack, story, title

from marrow import store
from marrow.errors import ReadTimeoutError
from marrow.raw import FOLDED_OFFSET, Delete, InMemoryLease, InMemoryWriteLog, LocalClient, Upsert, Writer
from marrow.store.memory import InMemoryBlobStore


class SilentLog(InMemoryWriteLog):
    """A log whose watch never fires: only strong reads pull."""

    def watch(self, callback: object) -> object:  # type: ignore[override]
        return lambda: None


def test_eventual_reads_see_acknowledged_writes_soon_and_strong_reads_at_once(stack: Stack) -> None:
    offset = stack.writer.bulk_update([Upsert(title(1, "Dark"))])
    assert stack.client.view("strong")["Title"].get(1).name == "Dark"
    assert stack.client.view().offset >= offset  # the in-memory log tells its watchers synchronously


def test_a_strong_read_waits_for_the_latest_offset_even_without_notifications() -> None:
    log = SilentLog()
    consumer = store.Consumer(InMemoryBlobStore())
    client = LocalClient(SCHEMA, consumer, log)
    client._pull()  # started without a watcher or base
    writer = Writer(SCHEMA, log, InMemoryLease().holder())
    writer.start()
    offset = writer.bulk_update([Upsert(title(1))])
    assert client.view()["Title"].get(1) is None  # eventual: not yet
    assert client.view("strong")["Title"].get(1) is not None
    writer.bulk_update([Upsert(title(2))])
    assert client.view(offset=offset)["Title"].get(2) is None  # a token waits only as far as it says
    with client.strong() as view:
        assert view["Title"].get(2) is not None
        writer.bulk_update([Upsert(title(3))])
        assert client.view() is view  # the scope paid once; its reads stay local
        assert client.view()["Title"].get(3) is None
    assert client.view("strong")["Title"].get(3) is not None


def test_a_strong_read_that_cannot_catch_up_times_out_clearly(stack: Stack) -> None:
    with pytest.raises(ReadTimeoutError, match="waits for offset 999"):
        stack.client.view(offset=999, timeout=0.05)
    stack.client.latest = lambda: 10_000
    with pytest.raises(ReadTimeoutError):
        stack.client.view("strong", timeout=0.05)


def test_views_never_go_back(stack: Stack) -> None:
    offsets = []
    for i in range(20):
        stack.writer.bulk_update([Upsert(title(i))])
        if i % 7 == 0:
            stack.folder.fold()
        offsets.append(stack.client.view().offset)
    assert offsets == sorted(offsets)


def test_folding_moves_writes_into_a_version_and_empties_the_overlay(stack: Stack) -> None:
    w = stack.writer
    w.bulk_update([Upsert(title(1)), Upsert(title(2)), Upsert(story(1, [1, 2]))])
    last = w.bulk_update([Delete("Title", 2)])
    report = stack.folder.fold()
    assert report is not None
    state = stack.producer.state
    assert state is not None and state.meta[FOLDED_OFFSET] == last
    assert state["Title"].get(2) is None and state["Story"].get(1).titles == [1, 2]
    stack.client.consumer.wait_for(report.version, 5)
    view = stack.client.view()
    assert view.version == report.version and len(view.overlay) == 0
    assert view["Title"].get(1) is not None and len(view["Title"]) == 1
    assert len(w.view().overlay) == 0
    assert stack.folder.fold() is None  # nothing new


def test_the_log_is_truncated_only_below_what_the_previous_version_holds(stack: Stack) -> None:
    w = stack.writer
    first = w.bulk_update([Upsert(title(1))])
    stack.folder.fold()
    assert stack.log.read(0)[0].offset == 1  # the first fold truncates nothing
    second = w.bulk_update([Upsert(title(2))])
    stack.folder.fold()
    assert stack.log.read(first)[0].offset == first + 1  # entries of version 1 are gone, later kept
    assert [e.offset for e in stack.log.read(first)][-1] == second


def test_a_client_behind_a_truncation_loads_the_newest_version(stack: Stack) -> None:
    behind = LocalClient(SCHEMA, store.Consumer(stack.blobs, stack.announcer), stack.log)
    behind._pull()  # no base, at offset 2 or so; never told of new entries after this
    w = stack.writer
    for i in range(3):
        w.bulk_update([Upsert(title(i))])
        stack.folder.fold()
    assert behind.view("strong")["Title"].get(2) is not None
    assert behind.view().version == stack.producer.state.version  # type: ignore[union-attr]


def test_reads_are_read_committed_while_bulk_updates_land(stack: Stack) -> None:
    """Each bulk update writes the same revision to ten stories; a reader never sees two revisions."""
    stop = threading.Event()
    torn: list[set[int]] = []

    def read() -> None:
        while not stop.is_set():
            view = stack.client.view()
            revisions = {r.revision for r in view["Story"].lookup(list(range(10))) if r is not None}
            if len(revisions) > 1:
                torn.append(revisions)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    for revision in range(1, 60):
        stack.writer.bulk_update([Upsert(story(i, [], revision)) for i in range(10)])
        if revision % 20 == 0:
            stack.folder.fold()
    stop.set()
    for r in readers:
        r.join()
    assert torn == []


def test_the_content_namespace_round_trips_through_writer_client_and_fold(stack: Stack) -> None:
    """Every acknowledged bulk update is in the log, the overlay, and after folding, the store."""
    w = stack.writer
    written = {}
    for i in range(1, 30):
        ops = [Upsert(title(i, f"Title {i}", popularity=i)), Upsert(story(i, [i]))]
        offset = w.bulk_update(ops, request_id=f"r{i}")
        written[i] = offset
        assert stack.log.read(offset - 1, limit=1)[0].offset == offset
        assert stack.client.view(offset=offset)["Title"].get(i).popularity == i
    stack.folder.fold()
    state = stack.producer.state
    assert state is not None
    for i in written:
        assert state["Title"].get(i).popularity == i and state["Story"].get(i).titles == [i]
    assert [r.id for r in stack.client.view()["Title"].complete("name", "title", 3)] == [1, 2, 3]
    assert {r.id for r in stack.client.view()["Story"].find("titles", 7)} == {7}


def test_entries_the_client_applied_before_a_rebase_are_kept(stack: Stack) -> None:
    """A fold that finishes while writes continue: the overlay keeps what the version lacks."""
    w = stack.writer
    w.bulk_update([Upsert(title(1))])
    log = stack.log
    folded_upto = log.last_offset()
    late = w.bulk_update([Upsert(title(2))])
    original_last = log.last_offset
    log.last_offset = lambda: folded_upto  # type: ignore[method-assign]
    report = stack.folder.fold()
    log.last_offset = original_last  # type: ignore[method-assign]
    assert report is not None
    stack.client.consumer.wait_for(report.version)  # the client refreshes in the background
    view = stack.client.view("strong")
    assert view.overlay.floor == folded_upto and view.offset == late
    assert view["Title"].get(2) is not None and view["Title"].get(1) is not None
