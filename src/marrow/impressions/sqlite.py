"""The embedded default :class:`~marrow.impressions.store.ImpressionStore`: one SQLite file in WAL mode.

Layout: one table keyed by the dedup key (so a repeated event is ignored by the primary key, not by
a lookup first), a covering index on ``(profile, timestamp, title)`` so that reading a profile's
history is one index range scan, and an index on ``day`` so that retention deletes whole days.

Each thread gets its own connection (WAL lets readers run beside the one writer); a write that
cannot get the database within ``busy_timeout_s``, or a database that has gone away, raises
:class:`~marrow.errors.StoreUnavailableError` and stores nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from marrow.errors import StoreUnavailableError
from marrow.impressions.store import StoredImpression

__all__ = ["SQLiteImpressionStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS impressions (
    key BLOB PRIMARY KEY,
    day INTEGER NOT NULL,
    profile INTEGER NOT NULL,
    title INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    page TEXT NOT NULL,
    section TEXT NOT NULL,
    position INTEGER NOT NULL,
    device TEXT NOT NULL,
    visible_share REAL NOT NULL,
    visible_ms INTEGER NOT NULL,
    scroll TEXT NOT NULL,
    cached_page INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS impressions_by_profile ON impressions (profile, timestamp, title);
CREATE INDEX IF NOT EXISTS impressions_by_day ON impressions (day);
"""
_INSERT = (
    "INSERT INTO impressions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (key) DO NOTHING RETURNING key"
)
_READ = (
    "SELECT timestamp, title FROM impressions WHERE profile = ? AND timestamp >= ? ORDER BY timestamp, title"
)
_RETRY_AFTER = 1


class SQLiteImpressionStore:
    """Impressions in the SQLite file at ``path`` (created with its directory when missing)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 2.0):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._guard("open"):
            db = self._db()
            db.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            if self._closed:
                raise StoreUnavailableError(f"the impression store {self.path} is closed", _RETRY_AFTER)
            db = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a commit survives the process crashing (not the machine losing power)
            db.execute("PRAGMA synchronous = NORMAL")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turns SQLite's errors (locked, gone, disk full, closed) into StoreUnavailableError."""
        try:
            yield
        except sqlite3.Error as e:
            if isinstance(e, sqlite3.ProgrammingError):  # this thread's connection was closed
                self._local.db = None
            raise StoreUnavailableError(
                f"cannot {what} the impression store {self.path}: {e}; "
                "check that the file and its directory exist and are writable",
                _RETRY_AFTER,
            ) from e

    def append(self, rows: Sequence[StoredImpression]) -> set[bytes]:
        if not rows:
            return set()
        with self._guard("append to"):
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                new = set()
                for row in rows:  # executemany cannot return RETURNING rows
                    got = db.execute(_INSERT, row).fetchone()
                    if got is not None:
                        new.add(got[0])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return new

    def read(self, profile: int, since: int, titles: Collection[int] | None = None) -> list[tuple[int, int]]:
        with self._guard("read"):
            found = self._db().execute(_READ, (profile, since)).fetchall()
        if titles is not None:
            # filtered here: an IN (SELECT value FROM json_each(?)) in the query measured twice as
            # slow when most of a profile's rows are of the titles asked for (a page built for them)
            wanted = set(titles)
            found = [r for r in found if r[1] in wanted]
        return found  # (timestamp, title) tuples as SQLite gives them: no object per row on top

    def expire(self, before_day: int) -> int:
        with self._guard("expire in"):
            return self._db().execute("DELETE FROM impressions WHERE day < ?", (before_day,)).rowcount

    def count(self) -> int:
        with self._guard("count in"):
            return int(self._db().execute("SELECT count(*) FROM impressions").fetchone()[0])

    def close(self) -> None:
        """Close every thread's connection; later calls raise StoreUnavailableError."""
        self._closed = True
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
