"""The key-value table of the legacy read path: PostgreSQL in the role Cassandra had.

One row per key (``key text primary key, value bytea``). The consumer writes each batch in one
transaction (records, changed row lists and the stream sequence it reached, together); the page data
service reads keys in bulk on a near-cache miss or refresh. Each process opens its own
:class:`KVTable` (one connection, shared by its threads under a lock).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping

import psycopg
from psycopg import sql

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class KVTable:
    """The table ``name`` in the database at ``dsn``; see the module docstring."""

    def __init__(self, dsn: str, name: str):
        if not _NAME.fullmatch(name):
            raise ValueError(f"a table name is lower-case letters, digits and '_', not {name!r}")
        self.name = name
        self._table = sql.Identifier(name)
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._lock = threading.Lock()

    def create(self) -> None:
        with self._lock:
            self._conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value bytea NOT NULL)").format(
                    self._table
                )
            )

    def drop(self) -> None:
        with self._lock:
            self._conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table))

    def write(self, upserts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Put ``upserts`` and remove ``deletes``, in one transaction."""
        deletes = list(deletes)
        with self._lock, self._conn.transaction():
            if upserts:
                self._conn.execute("CREATE TEMP TABLE staged (key text, value bytea) ON COMMIT DROP")
                with self._conn.cursor().copy("COPY staged (key, value) FROM STDIN") as copy:
                    for item in upserts.items():
                        copy.write_row(item)
                self._conn.execute(
                    sql.SQL(
                        "INSERT INTO {} SELECT key, value FROM staged "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
                    ).format(self._table)
                )
            if deletes:
                self._conn.execute(
                    sql.SQL("DELETE FROM {} WHERE key = ANY(%s)").format(self._table), (deletes,)
                )

    def get_many(self, keys: list[str]) -> dict[str, bytes]:
        """The values of those of ``keys`` that exist."""
        with self._lock:
            rows = self._conn.execute(
                sql.SQL("SELECT key, value FROM {} WHERE key = ANY(%s)").format(self._table), (keys,)
            ).fetchall()
        return {k: bytes(v) for k, v in rows}

    def size_bytes(self) -> int:
        """What the table takes on disk, its index and TOAST included."""
        with self._lock:
            row = self._conn.execute("SELECT pg_total_relation_size(%s)", (self.name,)).fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        with self._lock:
            row = self._conn.execute(sql.SQL("SELECT count(*) FROM {}").format(self._table)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._conn.close()
