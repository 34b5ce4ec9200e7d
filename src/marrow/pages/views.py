"""Where page construction gets what it reads: the current version, and the one a cursor began on.

Every fragment of a page reads what the first fragment read. Over a consumer, :class:`RecentVersions`
keeps the last few versions (by state tag) so that a cursor issued a moment ago still finds its version
after a refresh. Over a local client, :class:`ClientViews` gives the client's view — its base version
plus the in-flight overlay — eventual by default, or at least at an offset (a write's token: the
editor's preview reads its own save). A cursor whose version is gone reads the current one, and the
fragment says so (``consistent=False``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Protocol

from marrow.store import ReadState


class Views(Protocol):
    def current(self, offset: int | None = None) -> Any:
        """What a new page reads (a ReadState or a client's view); with ``offset``, at least that
        write's (waiting for it)."""

    def at(self, tag: str, offset: int | None = None) -> Any:
        """What a cursor's page began on — the version with state tag ``tag`` (and, for a client, the
        overlay at ``offset``) — or None when it is no longer held."""


class StaticViews:
    """One fixed version (tests, tools)."""

    def __init__(self, state: ReadState):
        self.state = state

    def current(self, offset: int | None = None) -> ReadState:
        return self.state

    def at(self, tag: str, offset: int | None = None) -> ReadState | None:
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

    def current(self, offset: int | None = None) -> ReadState:
        state: ReadState = self.source.state
        with self._lock:
            if state.tag not in self._recent:
                self._recent[state.tag] = state
                while len(self._recent) > self.keep:
                    self._recent.popitem(last=False)
        return state

    def at(self, tag: str, offset: int | None = None) -> ReadState | None:
        with self._lock:
            return self._recent.get(tag)


class ClientViews:
    """Views of a local client (:class:`marrow.raw.LocalClient`): base version + in-flight overlay."""

    def __init__(self, client: Any, timeout: float | None = None):
        self.client = client
        self.timeout = timeout  # how long a read at an offset waits (None: the client's default)

    def current(self, offset: int | None = None) -> Any:
        return self.client.view(offset=offset, timeout=self.timeout)

    def at(self, tag: str, offset: int | None = None) -> Any:
        view = self.client.view()
        if view.base is None or view.base.tag != tag:
            return None  # the version was folded over since: the cursor's page reads the new one
        return type(view)(view.overlay, offset) if offset is not None and offset <= view.offset else view
