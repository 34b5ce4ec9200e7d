"""Where page construction gets its store versions: the current one, and recent ones for cursors.

Every fragment of a page reads the version the first fragment read. :class:`RecentVersions` keeps the
last few versions a consumer moved through (by state tag) so that a cursor issued a moment ago still
finds its version after a refresh; a cursor older than that reads the current version, and the
fragment says so (``consistent=False``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Protocol

from marrow.store import ReadState


class Views(Protocol):
    def current(self) -> ReadState:
        """The version to read for a new page."""

    def at(self, tag: str) -> ReadState | None:
        """A recent version by its state tag, or None when it is no longer held."""


class StaticViews:
    """One fixed version (tests, tools)."""

    def __init__(self, state: ReadState):
        self.state = state

    def current(self) -> ReadState:
        return self.state

    def at(self, tag: str) -> ReadState | None:
        return self.state if tag == self.state.tag else None


class RecentVersions:
    """The current version of ``source`` (a Consumer, or anything with ``.state``) and the last
    ``keep`` versions it held. Each kept version is a whole dataset in memory unless its blobs are
    memory-mapped, so keep few."""

    def __init__(self, source: Any, keep: int = 3):
        self.source = source
        self.keep = keep
        self._recent: OrderedDict[str, ReadState] = OrderedDict()
        self._lock = threading.Lock()

    def current(self) -> ReadState:
        state: ReadState = self.source.state
        with self._lock:
            if state.tag not in self._recent:
                self._recent[state.tag] = state
                while len(self._recent) > self.keep:
                    self._recent.popitem(last=False)
        return state

    def at(self, tag: str) -> ReadState | None:
        with self._lock:
            return self._recent.get(tag)
