"""The :class:`~marrow.impressions.store.ImpressionStore` at scale: PostgreSQL (psycopg 3), one
partition per day.

The table is range-partitioned by ``day``, so retention drops whole partitions (instant, no vacuum)
and a read prunes the days before its window. Its primary key is ``(key, day)``: PostgreSQL requires
the partition column in a partitioned table's unique keys, and since ``dedup_bucket_s`` divides a day
(a validated setting) the same dedup key always falls on the same day, so this is as strict as a key
on ``key`` alone. Partitions are created on first use, under an advisory lock so that two writers do
not race to create the same one.

An append is one statement (``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING
key``) in one transaction: all of its rows or none. A server that cannot be reached, or a connection
that breaks, raises :class:`~marrow.errors.StoreUnavailableError`; the pool replaces broken connections,
so the store recovers by itself when the server is back.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from marrow.errors import ConfigError, StoreUnavailableError
from marrow.impressions.events import DAY_MS
from marrow.impressions.store import StoredImpression

__all__ = ["PostgresImpressionStore"]

_RETRY_AFTER = 2
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_COLUMNS = (
    ("key", "bytea"),
    ("day", "integer"),
    ("profile", "bigint"),
    ("title", "bigint"),
    ("timestamp", "bigint"),
    ("page", "text"),
    ("section", "text"),
    ("position", "integer"),
    ("device", "text"),
    ("visible_share", "real"),
    ("visible_ms", "integer"),
    ("scroll", "text"),
    ("cached_page", "boolean"),
)


class PostgresImpressionStore:
    """Impressions in the PostgreSQL table ``table`` (and its day partitions ``<table>_d<day>``)."""

    def __init__(
        self,
        dsn: str,
        table: str = "impressions",
        pool_size: int = 4,
        timeout_s: float = 3.0,
        application_name: str = "marrow-impressions",
    ):
        if not _NAME.match(table):
            raise ConfigError(f"table must be a lower-case SQL name of at most 41 characters, not {table!r}")
        self.table = table
        self._t = sql.Identifier(table)
        self._days: set[int] = set()
        self.pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_s,
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, int(timeout_s)),
                "application_name": application_name,  # how operators find these sessions
            },
            check=ConnectionPool.check_connection,
            open=False,
            name=f"marrow-impressions-{table}",
        )
        with self._guard("open"):
            self.pool.open(wait=True, timeout=timeout_s)
            with self.pool.connection() as db:
                self._create(db)

    def _create(self, db: psycopg.Connection[Any]) -> None:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {} NOT NULL").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in _COLUMNS
        )
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
            db.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY (key, day)) PARTITION BY RANGE (day)"
                ).format(self._t, columns)
            )
            db.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (profile, timestamp, title)").format(
                    sql.Identifier(f"{self.table}_by_profile"), self._t
                )
            )
        self._days = set(self._partitions(db))

    def _partitions(self, db: psycopg.Connection[Any]) -> dict[int, str]:
        """day → partition name, of the partitions that exist."""
        found = db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            (self.table,),
        ).fetchall()
        prefix = f"{self.table}_d"
        return {int(name[len(prefix) :]): name for (name,) in found if name.startswith(prefix)}

    def _ensure_days(self, db: psycopg.Connection[Any], days: set[int]) -> None:
        missing = days - self._days
        if not missing:
            return
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
            for day in sorted(missing):
                db.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})"
                    ).format(
                        sql.Identifier(f"{self.table}_d{day}"),
                        self._t,
                        sql.Literal(day),
                        sql.Literal(day + 1),
                    )
                )
        self._days |= missing

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as e:
            raise StoreUnavailableError(
                f"cannot {what} the impression store (PostgreSQL table {self.table}): {e}; "
                "check that the server is up and reachable",
                _RETRY_AFTER,
            ) from e

    def append(self, rows: Sequence[StoredImpression]) -> set[bytes]:
        if not rows:
            return set()
        columns = list(zip(*rows, strict=True))
        statement = sql.SQL(
            "INSERT INTO {} SELECT * FROM unnest({}) ON CONFLICT DO NOTHING RETURNING key"
        ).format(
            self._t,
            sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(kind)) for _, kind in _COLUMNS),
        )
        params = [list(c) for c in columns]
        with self._guard("append to"), self.pool.connection() as db:
            self._ensure_days(db, set(columns[1]))
            try:
                with db.transaction():
                    found = db.execute(statement, params).fetchall()
            except psycopg.errors.CheckViolation:  # a partition we knew was dropped by another process
                self._days = set(self._partitions(db))
                self._ensure_days(db, set(columns[1]))
                with db.transaction():
                    found = db.execute(statement, params).fetchall()
        return {bytes(k) for (k,) in found}

    def read(self, profile: int, since: int, titles: Collection[int] | None = None) -> list[tuple[int, int]]:
        query = sql.SQL(
            "SELECT timestamp, title FROM {} WHERE profile = %s AND timestamp >= %s AND day >= %s"
            "{} ORDER BY timestamp, title"
        ).format(self._t, sql.SQL(" AND title = ANY(%s)") if titles is not None else sql.SQL(""))
        params: list[Any] = [profile, since, since // DAY_MS]
        if titles is not None:
            params.append(list(titles))
        with self._guard("read"), self.pool.connection() as db:
            return db.execute(query, params).fetchall()

    def expire(self, before_day: int) -> int:
        dropped = 0
        with self._guard("expire in"), self.pool.connection() as db:
            for day, name in sorted(self._partitions(db).items()):
                if day >= before_day:
                    continue
                with db.transaction():
                    db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
                    count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
                    (n,) = db.execute(count).fetchone() or (0,)
                    db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
                dropped += int(n)
                self._days.discard(day)
        return dropped

    def drop(self) -> None:
        """Drop the table and its partitions (for tests and benchmarks that made their own table)."""
        with self._guard("drop"), self.pool.connection() as db:
            db.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(self._t))
        self._days.clear()

    def close(self) -> None:
        self.pool.close()
