"""The states the explorer's pages read: the consumer's current version, read once per request, and
other versions loaded from the blob store for a diff (at most two kept: each is a whole dataset)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from marrow.errors import MarrowError, RefreshError
from marrow.store.consumer import load_version
from marrow.store.history import History, VersionDiff, diff
from marrow.store.read import ReadState

__all__ = ["Explorer", "Problem"]

_LOADED_VERSIONS = 2  # states of other versions kept for /diff: each is a whole dataset in memory


class Problem(Exception):
    """Bad input: answered with ``status`` and ``message`` (what was wrong, what to do)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Explorer:
    """The source of states for the pages: the current one, and others loaded for diffs."""

    def __init__(self, source: Any, history: History | None):
        self.source = source
        self.history = history
        self.retriever = getattr(source, "retriever", None)
        self._loaded: dict[int, ReadState] = {}
        self._lock = threading.Lock()

    def state(self) -> ReadState:
        """The current version, read once per request."""
        if isinstance(self.source, ReadState):
            return self.source
        try:
            return self.source.state
        except RefreshError as e:
            raise Problem(503, f"no version to explore yet: {e}") from None

    def metrics(self, state: ReadState) -> dict[str, Any] | None:
        metrics = getattr(self.source, "metrics", None)
        return metrics.as_dict(state) if metrics is not None else None

    def diff(self, before: int, after: int) -> VersionDiff:
        """The history's entry when it holds this pair, else a diff of the two versions loaded."""
        for entry in self.history.entries() if self.history is not None else []:
            if (entry.before, entry.after) == (before, after):
                return entry
        return diff(self.state_at(before), self.state_at(after))

    def state_at(self, version: int) -> ReadState:
        current = self.state()
        if current.version == version:
            return current
        if self.retriever is None:
            raise Problem(
                404, f"version {version} is not in memory and this explorer has no blob store to load it from"
            )
        with self._lock:  # one load at a time: two concurrent loads of a dataset would double memory
            state = self._loaded.get(version)
            if state is None:
                try:
                    state = load_version(self.retriever, version)
                except (MarrowError, OSError) as e:
                    raise Problem(404, f"version {version} cannot be loaded: {e}") from None
                while len(self._loaded) >= _LOADED_VERSIONS:
                    self._loaded.pop(next(iter(self._loaded)))
                self._loaded[version] = state
            return state

    def versions(self) -> list[int]:
        """Versions that a diff can name: those of the history and those of the blob store."""
        found = (
            {v for e in self.history.entries() for v in (e.before, e.after) if v is not None}
            if self.history
            else set()
        )
        refs = getattr(self.retriever, "refs", None)
        if refs is not None:
            with contextlib.suppress(MarrowError, OSError):  # a store that is down: the history's versions
                found.update(ref.version for ref in refs())
        current = self.state().version
        if current is not None:
            found.add(current)
        return sorted(found)
