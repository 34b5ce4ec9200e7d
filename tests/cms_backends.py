"""The CMS over both engines, for the tests of the CMS and of what builds on it: SQLite (a file in a
temporary directory) and PostgreSQL (the local server, a schema of its own per test, dropped
afterwards). A conftest imports the fixtures to use them."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

import services
from marrow.cms import CMS, PostgresDatabase, SQLiteDatabase


class Clock:
    """A clock the test moves by hand (session expiry, audit times)."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=services.needs("postgres"))])
def cms_store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[CMS]:
    if request.param == "sqlite":
        db: SQLiteDatabase | PostgresDatabase = SQLiteDatabase(tmp_path / "cms.db")
    else:
        db = PostgresDatabase(services.POSTGRES_DSN, schema=f"cms_test_{secrets.token_hex(6)}")
    store = CMS(db, clock=clock)
    yield store
    if isinstance(db, PostgresDatabase):
        db.drop()
    store.close()
