"""The SQL engines the CMS keeps its tables in: SQLite (the embedded default) and PostgreSQL (at scale).

The CMS writes one dialect of SQL — ``?`` placeholders, ``ON CONFLICT``, ``RETURNING`` — that both
engines run; :class:`Database` hides the rest (connections, placeholders, transactions, which error
is a uniqueness violation, the DDL of an auto-numbered key).

Lifecycle: open with :func:`connect` (a URL) or a class; every read or write happens inside
``with db.transaction() as tx:``, which commits when the block ends and rolls back if it raises, so
nothing is half-applied. Transactions are safe to run from many threads at once (SQLite: one
connection per thread, writers serialised by ``BEGIN IMMEDIATE``; PostgreSQL: a connection pool).
``close()`` releases the connections.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from marrow.errors import ConfigError

__all__ = ["Database", "PostgresDatabase", "SQLiteDatabase", "Transaction", "connect"]

Row = tuple[Any, ...]


class Transaction(Protocol):
    """What the CMS runs its statements through inside one transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; its rows (empty for a statement that returns none)."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row of parameters."""
        ...


class Database(Protocol):
    """A SQL engine the CMS can keep its tables in."""

    #: the DDL of an auto-numbered 64-bit primary key column
    serial_key: str

    def transaction(self) -> Any:  # a context manager of Transaction
        """``with db.transaction() as tx:`` — all of it, or nothing."""
        ...

    def is_unique_violation(self, error: BaseException) -> bool:
        """Did a statement fail because it broke a unique index?"""
        ...

    def close(self) -> None: ...


class _SQLiteTransaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)


class SQLiteDatabase:
    """A SQLite file (WAL mode), one connection per thread."""

    serial_key = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if str(path) != ":memory:" and not self.path.parent.is_dir():
            raise ConfigError(
                f"the CMS database {self.path} is in a directory that does not exist; create it"
            )
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[_SQLiteTransaction]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock between writers
        try:
            yield _SQLiteTransaction(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def is_unique_violation(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


_PLACEHOLDER = re.compile(r"\?")


class _PostgresTransaction:
    def __init__(self, cursor: Any):
        self.cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.cursor.execute(_PLACEHOLDER.sub("%s", sql), params)
        return self.cursor.fetchall() if self.cursor.description is not None else []

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cursor.executemany(_PLACEHOLDER.sub("%s", sql), rows)


class PostgresDatabase:
    """PostgreSQL through psycopg 3 and a connection pool; the CMS's tables in ``schema``.

    ``schema`` keeps several CMSes (or parallel test runs) apart in one database; it is created if
    missing. Transactions run at READ COMMITTED: the CMS's optimistic checks are single conditional
    statements, which PostgreSQL makes atomic with row locks.
    """

    serial_key = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"

    def __init__(self, dsn: str, schema: str = "marrow_cms", pool_size: int = 8):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise ConfigError(f"PostgreSQL schema name {schema!r}: use lower-case letters, digits and _")
        import psycopg
        from psycopg_pool import ConnectionPool

        self.schema = schema
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        except psycopg.Error as e:
            raise ConfigError(f"cannot reach the CMS database at {_redacted(dsn)}: {e}") from None
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"options": f"-c search_path={schema}"},
            open=True,
        )
        self._psycopg = psycopg

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTransaction]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PostgresTransaction(cur)

    def is_unique_violation(self, error: BaseException) -> bool:
        return isinstance(error, self._psycopg.errors.UniqueViolation)

    def drop(self) -> None:
        """Drop the schema and everything in it (tests clean up with this)."""
        with self._pool.connection() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            conn.commit()

    def close(self) -> None:
        self._pool.close()


def _redacted(dsn: str) -> str:
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", dsn)


def connect(url: str) -> SQLiteDatabase | PostgresDatabase:
    """A database from a URL: ``sqlite:///path/to/cms.db`` (or a bare path), ``postgresql://...``
    (``?schema=name`` picks the schema; default ``marrow_cms``)."""
    if url.startswith(("postgresql://", "postgres://")):
        base, _, query = url.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        schema = params.pop("schema", "marrow_cms")
        rest = "&".join(f"{k}={v}" for k, v in params.items())
        return PostgresDatabase(base + (f"?{rest}" if rest else ""), schema=schema)
    if "://" in url and not url.startswith("sqlite://"):
        raise ConfigError(f"CMS database URL {url!r}: use sqlite:///path or postgresql://...")
    return SQLiteDatabase(url.removeprefix("sqlite://"))
