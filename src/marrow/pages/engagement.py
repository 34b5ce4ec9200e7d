"""Engagement: what a profile played and added to its list, which some sections are made of.

Continue watching, "because you watched" and the row an engagement triggers (watched a romantic
comedy → a romantic comedies row in the next fragment) read a profile's recent engagement, newest
first. :class:`SqliteEngagement` is the embedded default (one file, shared by the worker processes
of a host); :class:`InMemoryEngagement` serves tests and one process.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from marrow.errors import RecordError

ACTIONS = ("play", "add", "remove")


@dataclass(frozen=True)
class Engagement:
    """A profile played a title (``progress`` 0–1 of it watched) or added it to / removed it from its list."""

    profile: int
    title: int
    action: str
    progress: float = 0.0
    at: float = 0.0  # seconds since the epoch; 0: now

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise RecordError(f"engagement action {self.action!r} is not one of {list(ACTIONS)}")
        if not 0.0 <= self.progress <= 1.0:
            raise RecordError(f"engagement progress {self.progress!r} is outside 0–1")
        if not self.at:
            object.__setattr__(self, "at", time.time())


class EngagementStore(Protocol):
    def record(self, event: Engagement) -> None:
        """Keep ``event``."""

    def recent(self, profile: int, limit: int = 50) -> list[Engagement]:
        """The profile's latest events, newest first."""


class InMemoryEngagement:
    """Engagement in this process, the latest ``keep`` events per profile."""

    def __init__(self, keep: int = 200):
        self._events: defaultdict[int, deque[Engagement]] = defaultdict(lambda: deque(maxlen=keep))
        self._lock = threading.Lock()

    def record(self, event: Engagement) -> None:
        with self._lock:
            self._events[event.profile].appendleft(event)

    def recent(self, profile: int, limit: int = 50) -> list[Engagement]:
        with self._lock:
            return list(self._events.get(profile, ()))[:limit]


class SqliteEngagement:
    """Engagement in a SQLite file (WAL), shared by the processes of one host."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS engagement (profile INTEGER NOT NULL, title INTEGER NOT NULL,"
                " action TEXT NOT NULL, progress REAL NOT NULL, at REAL NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS engagement_profile ON engagement (profile, at)")

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        return db

    def record(self, event: Engagement) -> None:
        self._db().execute(
            "INSERT INTO engagement VALUES (?, ?, ?, ?, ?)",
            (event.profile, event.title, event.action, event.progress, event.at),
        )

    def recent(self, profile: int, limit: int = 50) -> list[Engagement]:
        rows = self._db().execute(
            "SELECT profile, title, action, progress, at FROM engagement WHERE profile = ?"
            " ORDER BY at DESC, rowid DESC LIMIT ?",
            (profile, limit),
        )
        return [Engagement(*row) for row in rows]
