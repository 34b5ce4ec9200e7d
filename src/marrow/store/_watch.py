"""What the announcement watchers share, so that every store keeps the same promises.

* :class:`Subscribers` — each subscriber sees each new version once, in increasing order;
* :class:`PollingWatcher` — a watcher thread over an announcement read as bytes (filesystem, S3);
* the announcement's JSON form: :func:`encode_announcement`, :func:`decode_announcement`.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

from marrow.errors import MarrowError

log = logging.getLogger(__name__)


@dataclass
class _Subscription:
    callback: Callable[[int], None]
    last: int | None  # the version this subscriber was given last (or that was current when it subscribed)


class Subscribers:
    """The callbacks of one watcher, and the rule by which versions reach them.

    Invariants (``marrow.store.blobstore``): each subscriber hears every change of the version, in
    order, newer or older (a rollback); never the version current when it subscribed, never one
    version twice in a row. A watcher that polls may see only the last of several quick
    announcements: it delivers what it sees. Deliveries are serialised; a delivery overtaken by a
    newer one (announced from inside a callback) stops, so that nobody hears a stale version last.
    An exception raised by a callback is logged and does not stop the others. After an unsubscribe
    function returns, its callback is not *started* again; a call already running may finish.
    """

    def __init__(self, current: int | None = None) -> None:
        self._subs: dict[int, _Subscription] = {}
        self._current = current
        self._deliveries = 0  # how many deliveries have started: a newer one overtakes older ones
        self._tokens = itertools.count()
        self._lock = threading.Lock()  # guards the registry; never held while a callback runs
        self._delivering = threading.RLock()  # serialises deliveries; reentrant for nested announces

    def set_current(self, version: int | None) -> None:
        """Make ``version`` the baseline: later deliveries must differ (used when a watcher starts)."""
        with self._lock:
            self._current = version

    def add(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Register ``callback`` for versions newer than the current one; returns its unsubscribe."""
        with self._lock:
            token = next(self._tokens)
            self._subs[token] = _Subscription(callback, self._current)

        def unsubscribe() -> None:
            with self._lock:
                self._subs.pop(token, None)

        return unsubscribe

    def __len__(self) -> int:
        with self._lock:
            return len(self._subs)

    def deliver(self, version: int) -> bool:
        """Hand ``version`` to every subscriber whose last version it is not.

        Returns False, and calls nobody, when ``version`` is the one delivered last (no change).
        """
        with self._delivering:
            with self._lock:
                if version == self._current:
                    return False
                self._current = version
                self._deliveries += 1
                mine = self._deliveries
                subs = list(self._subs.items())
            for token, sub in subs:
                with self._lock:
                    if self._deliveries != mine:  # a nested announce, from a callback, overtook this one
                        break
                    if token not in self._subs or version == sub.last:
                        continue
                    sub.last = version
                try:
                    sub.callback(version)
                except Exception:
                    log.exception("announcement subscriber %r failed on version %d", sub.callback, version)
            return True


def encode_announcement(version: int) -> bytes:
    """The bytes of an announcement of ``version``: small JSON, stamped with the time in UTC."""
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"a version is an int, not {version!r}")
    return json.dumps({"version": version, "announced_at": datetime.now(UTC).isoformat()}).encode()


def decode_announcement(raw: bytes) -> int:
    """The version in an announcement; ValueError for anything that is not a whole, valid one."""
    document = json.loads(raw)  # JSONDecodeError is a ValueError; a half-written file never parses
    if not isinstance(document, dict):
        raise ValueError("an announcement is a JSON object")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"the announced version must be an integer, not {version!r}")
    if not isinstance(document.get("announced_at", ""), str):
        raise ValueError("announced_at must be a string")
    return version


class PollingWatcher:
    """An :class:`~marrow.store.blobstore.AnnouncementWatcher` over an announcement read as bytes.

    Subclasses say how to read the announcement (:meth:`read_announcement`) and may wait for changes
    more cleverly than sleeping ``poll_interval`` (:meth:`_watch` / :meth:`_wait` / :meth:`_unwatch`).

    Lifecycle: :meth:`latest` reads the announcement on each call. The first :meth:`subscribe` starts
    a daemon thread, which delivers each version it reads that differs from the last one delivered
    (or from the one announced when it started), in the order read (see :class:`Subscribers`);
    versions announced faster than it looks may be skipped, never reordered.
    Subscribe first, then read :meth:`latest`, to miss nothing. :meth:`close` (or leaving a ``with``
    block) stops the thread; the watcher cannot be subscribed to again. Errors reading the
    announcement are logged once per outage and retried. An announcement that does not decode is
    logged once and ignored: it never yields a version, and :meth:`latest` keeps the last valid one.
    """

    def __init__(self, source: str, poll_interval: float) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, not {poll_interval}")
        self.poll_interval = poll_interval
        self._source = source
        self._subscribers = Subscribers()
        self._lock = threading.Lock()  # guards the last announcement read
        self._starting = threading.Lock()  # serialises the first subscribe against close
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last_raw: bytes | None = None
        self._last_valid: int | None = None

    def read_announcement(self) -> bytes | None:
        """The raw announcement, or None when there is none; raises MarrowError when unreachable."""
        raise NotImplementedError

    def latest(self) -> int | None:
        """The announced version, or None before the first (valid) announcement."""
        raw = self.read_announcement()
        with self._lock:
            if raw is None:
                return None
            if raw != self._last_raw:
                self._last_raw = raw
                try:
                    self._last_valid = decode_announcement(raw)
                except ValueError as error:
                    log.warning("ignoring the announcement in %s: %s: %.200r", self._source, error, raw)
            return self._last_valid

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(version)`` from the watcher's thread on each new announcement."""
        with self._starting:
            if self._closed:
                raise RuntimeError(f"the watcher of {self._source} is closed; create a new one")
            if self._thread is not None:
                return self._subscribers.add(callback)
            self._watch()  # before reading the baseline, so that no change falls between the two
            try:
                self._subscribers.set_current(self.latest())
            except MarrowError as error:  # the thread will retry; the first version it reads is news
                log.warning("cannot read the announcement in %s yet: %s", self._source, error)
            unsubscribe = self._subscribers.add(callback)
            self._thread = threading.Thread(target=self._run, name=f"watch {self._source}", daemon=True)
            self._thread.start()
            return unsubscribe

    def close(self) -> None:
        """Stop the watcher's thread (waiting for it, unless called from a callback); idempotent."""
        with self._starting:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake()
        if thread is None:
            self._unwatch()
        elif thread is not threading.current_thread():
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        failing = False
        try:
            while not self._stop.is_set():
                self._wait()
                if self._stop.is_set():
                    break
                try:
                    version = self.latest()
                except Exception as error:  # the thread must outlive an outage, or a bug in a reader
                    if not failing:  # once per outage, not once per poll
                        log.warning("cannot read the announcement (will retry): %s", error, exc_info=True)
                    failing = True
                    continue
                failing = False
                if version is not None:
                    self._subscribers.deliver(version)
        finally:
            self._unwatch()

    def _watch(self) -> None:
        """Prepare to notice changes (called once, before the thread starts)."""

    def _wait(self) -> None:
        """Return when the announcement may have changed, or when the watcher is stopped."""
        self._stop.wait(self.poll_interval)

    def _wake(self) -> None:
        """Interrupt :meth:`_wait` so that the thread sees the stop."""

    def _unwatch(self) -> None:
        """Release what :meth:`_watch` took (on the watcher's thread, as it ends)."""
