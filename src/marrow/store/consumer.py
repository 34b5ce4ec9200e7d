"""The consumer: holds one version of a dataset in memory and follows the producer's announcements.

Lifecycle::

    consumer = Consumer(store, watcher)      # nothing loaded yet
    consumer.refresh()                       # load the announced version (nearest snapshot + deltas)
    consumer.start()                         # from now on, refresh in the background on announcements
    consumer.state["Title"].get(42)          # reads always see one whole version
    consumer.pin(7)                          # stay on version 7 (reverse deltas or a snapshot)
    consumer.unpin()                         # follow announcements again
    consumer.close()

Invariants: :attr:`Consumer.state` is replaced in one assignment after a new version is complete, so
a reader holding the old state keeps reading it, whole, while a refresh is applied. A failed refresh
(missing or corrupt blob, unreachable store) keeps the current version; in the background it is
retried with exponential backoff until it succeeds or a newer version is announced.

Who owns a version's memory: the :class:`ReadState` and everything taken from it (type readers,
record views, arrays) keep its arrays alive — in the heap, or in a file mapped by the blob store
(:class:`~marrow.store.filesystem.MappedFile`), unmapped when the last of them is gone. A version
is a cyclic structure (its readers point back at it), so CPython frees it in a cyclic garbage
collection, not the moment it is dropped. With ``release_delay`` set, the consumer gives superseded
versions back promptly after each refresh (see :meth:`Consumer._release`); by default it leaves
that to Python's own collections.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from marrow.errors import MarrowError, RefreshError
from marrow.store._turns import SWITCH_INTERVAL, TURNS
from marrow.store.blobstore import AnnouncementWatcher, BlobRef, BlobRetriever, Buffer, CarriedDeltas
from marrow.store.filesystem import MappedFile
from marrow.store.read import ReadState

log = logging.getLogger("marrow.store.consumer")

RefreshListener = Callable[[ReadState | None, ReadState], None]  #: (previous, current) after each refresh


@dataclass
class ConsumerMetrics:
    """What a consumer has done: version, refresh durations, failures."""

    version: int | None = None
    refreshes: int = 0
    failures: int = 0
    last_error: str | None = None
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    snapshots_loaded: int = 0
    deltas_applied: int = 0

    def as_dict(self, state: ReadState | None) -> dict[str, Any]:
        return {
            "version": self.version,
            "refreshes": self.refreshes,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_refresh_s": self.durations[-1] if self.durations else None,
            "max_refresh_s": max(self.durations) if self.durations else None,
            "snapshots_loaded": self.snapshots_loaded,
            "deltas_applied": self.deltas_applied,
            "bytes_per_type": {n: m["data_bytes"] + m["index_bytes"] for n, m in state.memory().items()}
            if state is not None
            else {},
        }


def load_version(retriever: BlobRetriever, version: int, max_chain: int = 1_000_000) -> ReadState:
    """A state of ``version`` from the nearest snapshot at or before it, then deltas forward."""
    return _load(retriever, version, max_chain)[0]


def _load(retriever: BlobRetriever, version: int, max_chain: int) -> tuple[ReadState, int, Buffer]:
    """The state of ``version``, the deltas applied after the snapshot, and the snapshot's bytes."""
    found = retriever.retrieve_snapshot(version)
    if found is None:
        raise RefreshError(f"no snapshot at or before version {version} in the blob store")
    state = ReadState.from_snapshot(found[1])
    reached = _walk(retriever, state, version, max_chain)
    if reached is None:
        raise RefreshError(f"no chain of deltas leads from version {state.version} to {version}")
    return (*reached, found[1])


def _walk(
    retriever: BlobRetriever, state: ReadState, target: int, max_chain: int
) -> tuple[ReadState, int] | None:
    """Follow deltas (or reverse deltas, to go back) from ``state`` to ``target``: the state reached
    and the deltas applied, or None when the chain breaks, overshoots or runs longer than ``max_chain``."""
    steps = 0
    forward = state.version is None or target >= state.version
    while state.version != target:
        current = state.version
        if current is None or steps >= max_chain or (current > target if forward else current < target):
            return None
        found = (
            retriever.retrieve_delta(current, target)
            if forward
            else retriever.retrieve_reverse_delta(current, target)
        )
        if found is None or (found[0].version > target if forward else found[0].version < target):
            return None
        state = state.apply_delta(found[1])
        steps += 1
    return state, steps


class _Carried:
    """A retriever that takes a forward delta from the announcement that carried it, when one did
    (see :class:`~marrow.store.blobstore.CarriedDeltas`), and everything else from the blob store."""

    def __init__(self, retriever: BlobRetriever, watcher: CarriedDeltas) -> None:
        self.retriever, self.watcher = retriever, watcher

    def retrieve_snapshot(self, version: int) -> tuple[BlobRef, Buffer] | None:
        return self.retriever.retrieve_snapshot(version)

    def retrieve_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        if toward is not None and (carried := self.watcher.carried_delta(origin, toward)) is not None:
            return carried
        return self.retriever.retrieve_delta(origin, toward)

    def retrieve_reverse_delta(self, origin: int, toward: int | None = None) -> tuple[BlobRef, Buffer] | None:
        return self.retriever.retrieve_reverse_delta(origin, toward)


class Consumer:
    """Holds the current version of one dataset and moves it to announced (or pinned) versions.

    While it switches versions — from an announcement's arrival until the refresh listeners have
    been told, and while it releases a superseded version — CPython's switch interval is lowered to
    ``switch_interval`` (see :mod:`marrow.store._turns`), so that reader threads of this process wait
    for the GIL about that long at a time, not the default 5 ms; ``None`` leaves it alone.
    """

    def __init__(
        self,
        retriever: BlobRetriever,
        watcher: AnnouncementWatcher | None = None,
        *,
        max_delta_chain: int = 32,
        listeners: Sequence[RefreshListener] = (),
        min_backoff: float = 0.05,
        max_backoff: float = 5.0,
        release_delay: float | None = None,
        keep_superseded: int = 4,
        switch_interval: float | None = SWITCH_INTERVAL,
    ):
        if switch_interval is not None and not 0 < switch_interval <= 1:
            raise ValueError(f"switch_interval must be None or in (0, 1] seconds, not {switch_interval!r}")
        self.retriever = retriever
        #: where deltas come from: the announcements that carried them, else the blob store
        self._blobs: BlobRetriever = (
            _Carried(retriever, watcher) if isinstance(watcher, CarriedDeltas) else retriever
        )
        self.release_delay, self.keep_superseded = release_delay, keep_superseded
        self.switch_interval = switch_interval
        self._turning = False  # an announcement holds the switch interval lowered until its refresh
        #: the mapped snapshot file each state's arrays live in (weakly: a state owns its mapping)
        self._sources: weakref.WeakKeyDictionary[ReadState, weakref.ref[MappedFile]] = (
            weakref.WeakKeyDictionary()
        )
        #: versions replaced and not yet freed, with the file each was mapped from
        self._superseded: list[tuple[weakref.ref[ReadState], weakref.ref[MappedFile] | None]] = []
        self.watcher = watcher
        self.max_delta_chain = max_delta_chain
        self.listeners = list(listeners)
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.metrics = ConsumerMetrics()
        self.pinned: int | None = None
        self._state: ReadState | None = None
        self._told: ReadState | None = None  # the newest version the refresh listeners were told of
        self._lock = threading.Lock()  # one refresh at a time
        self._wanted: int | None = None
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False

    @property
    def state(self) -> ReadState:
        """The current version. Hold on to it for a consistent series of reads."""
        state = self._state
        if state is None:
            raise RefreshError("nothing loaded yet: call refresh() (or start()) first")
        return state

    @property
    def version(self) -> int | None:
        return self._state.version if self._state is not None else None

    def refresh(self, version: int | None = None) -> ReadState:
        """Move to ``version`` (default: the pinned version, else the announced one) and return it.

        Deltas are followed when a chain of at most ``max_delta_chain`` leads there, forward or
        backward; otherwise the nearest snapshot is loaded. On failure the current version stays and
        :class:`~marrow.errors.RefreshError` says why.
        """
        with TURNS.held(self.switch_interval):
            return self._refresh(version)

    def _refresh(self, version: int | None) -> ReadState:
        target = (
            version if version is not None else self.pinned if self.pinned is not None else self._announced()
        )
        with self._lock:
            previous = self._state
            if previous is not None and previous.version == target:
                return previous
            started = time.perf_counter()
            try:
                state = self._reach(previous, target)
            except (MarrowError, OSError) as e:  # a blob store that is down raises OSError
                self.metrics.failures += 1
                self.metrics.last_error = str(e)
                log.warning("refresh to version %s failed, keeping %s: %s", target, self.version, e)
                if isinstance(e, RefreshError):
                    raise
                raise RefreshError(f"refresh to version {target} failed, keeping {self.version}: {e}") from e
            self._state = state  # one assignment: readers see the old or the new version, whole
            if previous is not None and self.release_delay is not None:
                self._supersede(previous)
            self.metrics.version = state.version
            self.metrics.refreshes += 1
            self.metrics.last_error = None
            self.metrics.durations.append(time.perf_counter() - started)
        for listener in self.listeners:
            try:
                listener(previous, state)
            except Exception:  # a listener's failure must not undo the refresh
                log.exception("refresh listener %r failed", listener)
        self._told = state  # the listeners have heard of it (wait_for waits for this)
        return state

    def _announced(self) -> int:
        latest = self.watcher.latest() if self.watcher is not None else None
        if latest is None:
            raise RefreshError("no version announced yet")
        return latest

    def _reach(self, current: ReadState | None, target: int) -> ReadState:
        reached = None
        if current is not None and current.version is not None:
            reached = _walk(self._blobs, current, target, self.max_delta_chain)
            source = self._sources.get(current)  # a state reached by deltas keeps its snapshot's arrays
        if reached is None:  # no state yet, or no short chain of deltas: the nearest snapshot
            state, steps, snapshot = _load(self._blobs, target, self.max_delta_chain)
            source = weakref.ref(snapshot) if isinstance(snapshot, MappedFile) else None
            self.metrics.snapshots_loaded += 1
        else:
            state, steps = reached
        if source is not None:
            self._sources[state] = source
        self.metrics.deltas_applied += steps
        return state

    # --- releasing superseded versions ---------------------------------------------------------

    def _supersede(self, previous: ReadState) -> None:
        """Schedule the release of ``previous`` (see ``release_delay``)."""
        with self._wake:
            self._superseded.append((weakref.ref(previous), self._sources.get(previous)))
        RELEASES.schedule(self, self.release_delay or 0.0)

    def _release(self) -> None:
        """Give back the memory of superseded versions, once readers have had ``release_delay`` to
        finish with them. Pages mapped from a file leave this process at once (``MADV_DONTNEED``:
        safe even while a reader still holds the version — a page read again comes back from the
        file). Objects are collected from the young generations, which is cheap; by the time a
        version is superseded its objects are mostly in the oldest one, so the whole heap is collected
        when more than ``keep_superseded`` superseded versions are still alive (see
        :class:`~marrow.store.host.SharedConsumer` for keeping that collection short)."""
        with TURNS.held(self.switch_interval):
            gc.collect(1)
            current = self._state
            in_use = self._sources.get(current) if current is not None else None
            with self._wake:
                alive = [(s, m) for s, m in self._superseded if s() is not None]
                self._superseded = alive
            for _, mapped in alive:
                view = mapped() if mapped is not None and mapped is not in_use else None
                if view is not None:
                    view.drop()
            if len(alive) > self.keep_superseded:
                gc.collect()
                with self._wake:
                    self._superseded = [(s, m) for s, m in self._superseded if s() is not None]

    # --- pinning --------------------------------------------------------------------------------

    def pin(self, version: int) -> ReadState:
        """Stay on ``version`` whatever is announced, until :meth:`unpin`."""
        state = self.refresh(version)
        self.pinned = version
        return state

    def unpin(self) -> ReadState | None:
        """Follow announcements again; moves to the announced version now if there is one."""
        self.pinned = None
        if self.watcher is None or self.watcher.latest() is None:
            return self._state
        return self.refresh()

    # --- background refresh ---------------------------------------------------------------------

    def start(self) -> None:
        """Refresh now if a version is announced, then on every announcement, in a daemon thread."""
        if self.watcher is None:
            raise RefreshError("a consumer without an announcement watcher cannot follow announcements")
        if self._thread is not None:
            return
        if self.release_delay is not None:
            RELEASES.ready()  # before the first switch: starting a thread then would hold up readers
        self._thread = threading.Thread(target=self._run, name="marrow-consumer", daemon=True)
        self._thread.start()
        self._unsubscribe = self.watcher.subscribe(self._announce)
        latest = self.watcher.latest()
        if latest is not None:
            self._announce(latest)

    def _announce(self, version: int) -> None:
        with self._wake:  # the version announced last, older or not: a rollback is followed too
            self._wanted = version
            if self.switch_interval is not None and not (self._turning or self._closed or self._settled()):
                # lowered now, on the watcher's thread: the refresh thread is woken into short turns
                TURNS.enter(self.switch_interval)
                self._turning = True
            self._wake.notify()

    def _end_turns(self) -> None:
        with self._wake:
            self._end_turns_held()

    def _end_turns_held(self) -> None:  # with self._wake held
        if self._turning:
            self._turning = False
            TURNS.leave()

    def _run(self) -> None:
        backoff = self.min_backoff
        while True:
            with self._wake:
                while not self._closed and (self._wanted is None or self._settled()):
                    self._end_turns_held()  # reached meanwhile (a direct refresh): nothing to switch
                    self._wake.wait()
                if self._closed:
                    return
                target = self._wanted
            try:
                try:
                    self.refresh(self.pinned if self.pinned is not None else target)
                finally:
                    self._end_turns()  # also after a failure: a backoff is no switch
                backoff = self.min_backoff
            except MarrowError:
                with self._wake:  # wait, unless a newer version is announced meanwhile
                    self._wake.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            except Exception:
                log.exception("unexpected error in the consumer's refresh thread")
                time.sleep(backoff)

    def _settled(self) -> bool:
        goal = self.pinned if self.pinned is not None else self._wanted
        return goal is None or self.version == goal

    def wait_for(self, version: int, timeout: float = 10.0) -> ReadState:
        """Block until the consumer is on ``version`` (or newer) and its refresh listeners have been
        told, or raise RefreshError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            told = self._told
            if told is not None and told.version is not None and told.version >= version:
                return self._state or told
            time.sleep(0.002)
        raise RefreshError(f"version {version} not reached within {timeout} s (at {self.version})")

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._end_turns()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Releases:
    """One thread per process that runs consumers' releases as they fall due (see
    :meth:`Consumer._release`). Before, each switch started a ``threading.Timer``: a thread start
    is a few GIL hand-overs with the starting thread, and a busy reader thread waited up to 1.35 ms
    for one (benchmarks/RESULTS.md, lifecycle run 9). Consumers are held weakly: one dropped while
    its release is pending is freed, and the release skipped."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, weakref.ref[Consumer]]] = []  # a heap, soonest first
        self._order = itertools.count()  # ties in time go in the order scheduled
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def ready(self) -> None:
        """Start the thread unless it runs."""
        with self._changed:
            self._running()

    def schedule(self, consumer: Consumer, delay: float) -> None:
        """Run ``consumer._release()`` in ``delay`` seconds."""
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), weakref.ref(consumer)))
            self._changed.notify()
            self._running()

    def _running(self) -> None:  # with self._changed held; a forked child starts its own thread
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="marrow-release", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    now = time.monotonic()
                    if self._due and self._due[0][0] <= now:
                        break
                    self._changed.wait(self._due[0][0] - now if self._due else None)
                _, _, ref = heapq.heappop(self._due)
            consumer = ref()
            if consumer is None:
                continue
            try:
                consumer._release()
            except Exception:  # one consumer's failure must not stop the releases of others
                log.exception("releasing superseded versions of %r failed", consumer)
            del consumer  # not held while waiting: a consumer dropped meanwhile is freed


RELEASES = _Releases()  #: the process's release thread
