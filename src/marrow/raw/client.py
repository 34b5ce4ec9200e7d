"""The local client: a consumer of the base version plus the in-flight overlay, kept current by
tailing the write log; eventual reads by default, strong reads on request.

Lifecycle::

    client = LocalClient(schema, consumer, log)
    client.start()                                  # load the announced version, tail the log
    view = client.view()                            # eventual: what this process has, at once
    view = client.view(consistency="strong")        # wait for the latest acknowledged offset
    view = client.view(offset=token)                # wait for a given offset (read your write)
    with client.strong() as view:                   # one wait for the whole request:
        ...                                         # client.view() returns this view inside
    client.close()

Invariants:

* a view is one base version and the overlay at one offset: each bulk update whole or not at all
  (read committed), however the client moves on while the view is used;
* the views a client hands out never go back: their offsets only grow (monotonic reads);
* a strong view sees every write acknowledged before it was asked for (the log's last offset is
  read first, then the client catches up to it); when it cannot within ``timeout`` it raises
  :class:`~marrow.errors.ReadTimeoutError` and serves nothing stale;
* when the consumer loads a newer version, the overlay keeps only the entries above its folded
  offset; a client that falls behind a log truncation loads the newest version and tails from there.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

from marrow.errors import LogTruncatedError, MarrowError, ReadTimeoutError, RefreshError
from marrow.raw.log import LogReader
from marrow.raw.ops import BulkUpdate
from marrow.raw.overlay import Overlay, folded_offset
from marrow.raw.view import View
from marrow.store import Consumer, ReadState, Schema

__all__ = ["Consistency", "LocalClient"]

log = logging.getLogger(__name__)

Consistency = Literal["eventual", "strong"]


class LocalClient:
    """Reads a namespace in this process; see the module docstring."""

    def __init__(
        self,
        schema: Schema,
        consumer: Consumer,
        log: LogReader,
        *,
        timeout: float = 5.0,
        latest: Callable[[], int] | None = None,
    ):
        """``latest`` tells the latest acknowledged offset for strong reads (default: the log's
        last offset; a client far from the log may ask the writer instead)."""
        self.schema = schema
        self.consumer = consumer
        self.log = log
        self.timeout = timeout
        self.latest = latest or log.last_offset
        self.overlay = Overlay(schema, None)
        # one thread applies entries or rebases at a time; reentrant, since a pull that finds the log
        # truncated refreshes the consumer, whose listener rebases
        self._apply = threading.RLock()
        self._caught_up = threading.Condition()
        self._scope: contextvars.ContextVar[View | None] = contextvars.ContextVar(
            f"strong-{id(self)}", default=None
        )
        self._unwatch: Callable[[], None] | None = None
        self._started = False
        self.on_close: list[Callable[[], None]] = []  #: called by close(), after the client stops
        consumer.listeners.append(self._on_version)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> LocalClient:
        """Load the announced version (if any), catch up with the log, then follow both."""
        if self._started:
            return self
        self._started = True
        if self.consumer.watcher is not None:
            try:
                self.consumer.start()
                latest = self.consumer.watcher.latest()
                if latest is not None:
                    self.consumer.wait_for(latest, self.timeout)
            except RefreshError as e:
                log.warning("starting without a base version: %s", e)
        self._pull()
        self._unwatch = self.log.watch(self._on_append)
        return self

    def close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        with contextlib.suppress(ValueError):
            self.consumer.listeners.remove(self._on_version)
        hooks, self.on_close = self.on_close, []
        for hook in hooks:
            hook()

    def __enter__(self) -> LocalClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- following the log and the versions --------------------------------------------------------

    def _on_append(self) -> None:
        try:
            self._pull()
        except MarrowError as e:
            log.warning("cannot tail the write log (will retry): %s", e)

    def _pull(self) -> int:
        """Apply every entry the log has above the overlay's offset; returns the offset reached."""
        with self._apply:
            overlay = self.overlay
            while True:
                try:
                    entries = self.log.read(overlay.offset)
                except LogTruncatedError as e:
                    overlay = self._skip_truncation(e)
                    continue
                if not entries:
                    break
                for entry in entries:
                    overlay.apply(entry.offset, BulkUpdate.decode(entry.payload))
        with self._caught_up:
            self._caught_up.notify_all()
        return overlay.offset

    def _skip_truncation(self, error: LogTruncatedError) -> Overlay:
        """The log dropped entries this client still needs: load the newest version, tail from it."""
        announced = self.consumer.watcher.latest() if self.consumer.watcher is not None else None
        if announced is not None:
            self.consumer.refresh(announced)  # its listener rebases the overlay (this thread holds the lock)
        if self.overlay.offset < error.first - 1:
            raise RefreshError(
                f"the write log starts at offset {error.first}, but the newest version this client can "
                f"load holds offsets up to {self.overlay.floor}; is the producer folding?"
            ) from error
        return self.overlay

    def _on_version(self, _previous: ReadState | None, state: ReadState) -> None:
        """A consumer listener: move the overlay onto the new version."""
        with self._apply:
            current = self.overlay
            if folded_offset(state) >= current.floor:
                self.overlay = current.rebased(state)
            else:  # an older version (pinned, rolled back): tail the log again from its offset
                self.overlay = Overlay(self.schema, state, current.classes)

    # --- reading ---------------------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """The offset this client has applied: eventual views see at least this much."""
        return self.overlay.offset

    def view(
        self,
        consistency: Consistency = "eventual",
        *,
        offset: int | None = None,
        timeout: float | None = None,
    ) -> View:
        """A consistent view: eventual (at once), strong (after catching up with the latest
        acknowledged offset), or at least at ``offset`` (a token a write returned). Inside
        ``with client.strong()``, the scope's view."""
        scoped = self._scope.get()
        if scoped is not None and offset is None:
            return scoped
        if consistency not in ("eventual", "strong"):
            raise ValueError(f"consistency is 'eventual' or 'strong', not {consistency!r}")
        if consistency == "strong" and offset is None:
            offset = self.latest()
        if offset is not None:
            self.wait_for(offset, timeout)
        return View(self.overlay)

    def wait_for(self, offset: int, timeout: float | None = None) -> int:
        """Block until the client has applied ``offset``; raises ReadTimeoutError after ``timeout``."""
        if self.overlay.offset >= offset:
            return self.overlay.offset
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            reached = self._pull()
            if reached >= offset:
                return reached
            left = deadline - time.monotonic()
            if left <= 0:
                raise ReadTimeoutError(
                    f"a strong read waits for offset {offset}, but this client reached {reached} within "
                    f"{limit:g} s; the write log may be unreachable — retry, or read eventually"
                )
            with self._caught_up:
                self._caught_up.wait(min(left, 0.005))

    @contextlib.contextmanager
    def strong(self, *, offset: int | None = None, timeout: float | None = None) -> Iterator[View]:
        """A scope that waits once (for the latest acknowledged offset, or ``offset``), then serves
        every ``client.view()`` inside it from that one view."""
        view = self.view("strong", offset=offset, timeout=timeout)
        token = self._scope.set(view)
        try:
            yield view
        finally:
            self._scope.reset(token)

    def get(self, type: str, key: Any, consistency: Consistency = "eventual") -> Any:
        """One record by primary key (a view for a single read)."""
        return self.view(consistency)[type].get(key)
