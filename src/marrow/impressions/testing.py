"""Helpers to test code that uses impression history, the way Marrow's own tests do.

* :class:`Clock` — a clock you move by hand (the service takes any ``() -> seconds``);
* :class:`Outage` — wraps any store; while ``down`` is set, every call raises
  :class:`~marrow.errors.StoreUnavailableError`, as a store that went away does;
* :class:`Gate` — wraps any store; appends wait while it is held, as a store that is slow does
  (to fill the ingest buffer);
* :func:`impression` — a valid event, with any field overridden.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from typing import Any

from marrow.errors import StoreUnavailableError
from marrow.impressions.events import Impression
from marrow.impressions.store import ImpressionStore, StoredImpression

__all__ = ["T0", "Clock", "Gate", "Outage", "impression"]

#: A fixed "now" for tests: 2025-01-01T00:00:00Z, in seconds.
T0 = 1_735_689_600.0


class Clock:
    """A clock that moves only when told: call it for the time in seconds."""

    def __init__(self, start: float = T0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def impression(clock: Clock | None = None, **fields: Any) -> Impression:
    """A valid impression at the clock's time (or :data:`T0`), seen wholly for two seconds."""
    values: dict[str, Any] = {
        "profile": 1,
        "title": 100,
        "page": "home",
        "section": "trending",
        "position": 0,
        "device": "web",
        "timestamp": int((clock() if clock else T0) * 1000),
        "visible_share": 1.0,
        "visible_ms": 2000,
    }
    values.update(fields)
    return Impression(**values)


class Outage:
    """A store that can be made to go away: set ``down`` and every call fails."""

    def __init__(self, store: ImpressionStore):
        self.store = store
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise StoreUnavailableError("the impression store is down (an Outage in a test)", 1)

    def append(self, rows: Sequence[StoredImpression]) -> set[bytes]:
        self._check()
        return self.store.append(rows)

    def read(self, profile: int, since: int, titles: Collection[int] | None = None) -> list[tuple[int, int]]:
        self._check()
        return self.store.read(profile, since, titles)

    def expire(self, before_day: int) -> int:
        self._check()
        return self.store.expire(before_day)


class Gate:
    """A store whose appends wait while the gate is held (``hold()`` / ``release()``)."""

    def __init__(self, store: ImpressionStore):
        self.store = store
        self._open = threading.Event()
        self._open.set()
        self.waiting = threading.Event()  #: set while an append waits at the gate

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def append(self, rows: Sequence[StoredImpression]) -> set[bytes]:
        if not self._open.is_set():
            self.waiting.set()
            self._open.wait()
            self.waiting.clear()
        return self.store.append(rows)

    def read(self, profile: int, since: int, titles: Collection[int] | None = None) -> list[tuple[int, int]]:
        return self.store.read(profile, since, titles)

    def expire(self, before_day: int) -> int:
        return self.store.expire(before_day)
