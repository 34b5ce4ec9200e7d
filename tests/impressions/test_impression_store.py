"""Stores: the same contract for memory, SQLite and PostgreSQL (the real server, under its marker).

The contract: an append stores each dedup key once and returns the keys it newly stored; a read
returns a profile's impressions since a time, oldest first (of some titles, or all); expiry drops
whole days. Checked against a model with Hypothesis on every store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import services
from marrow.errors import StoreUnavailableError
from marrow.impressions import DedupKey, ImpressionStore, InMemoryImpressionStore, Shown, StoredImpression
from marrow.impressions.events import DAY_MS
from marrow.impressions.sqlite import SQLiteImpressionStore
from marrow.impressions.testing import T0, impression

NOW = int(T0 * 1000)
KEY = DedupKey(["profile", "title", "page", "section", "position", "timestamp_bucket"], 300)


def row(**fields: object) -> StoredImpression:
    event = impression(**fields)
    return StoredImpression.of(event, KEY(event))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=services.needs("postgres"))])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ImpressionStore]:
    if request.param == "memory":
        yield InMemoryImpressionStore()
    elif request.param == "sqlite":
        s = SQLiteImpressionStore(tmp_path / "impressions.db")
        yield s
        s.close()
    else:
        from marrow.impressions.postgres import PostgresImpressionStore

        p = PostgresImpressionStore(services.POSTGRES_DSN, table=f"impressions_test_{uuid.uuid4().hex[:10]}")
        yield p
        p.drop()
        p.close()


def test_append_stores_each_key_once_and_says_which_were_new(store: ImpressionStore) -> None:
    a, b = row(title=1), row(title=2)
    assert store.append([a, b]) == {a.key, b.key}
    assert store.append([a, b]) == set()
    c = row(title=3)
    assert store.append([c, a, c]) == {c.key}
    assert store.read(1, 0) == [Shown(NOW, 1), Shown(NOW, 2), Shown(NOW, 3)]


def test_read_is_per_profile_since_a_time_oldest_first(store: ImpressionStore) -> None:
    store.append(
        [
            row(title=5, timestamp=NOW - 2000),
            row(title=4, timestamp=NOW - 9000),
            row(title=6, timestamp=NOW - 2000, position=3),
            row(title=4, timestamp=NOW, profile=2),
        ]
    )
    assert store.read(1, 0) == [Shown(NOW - 9000, 4), Shown(NOW - 2000, 5), Shown(NOW - 2000, 6)]
    assert store.read(1, NOW - 2000) == [Shown(NOW - 2000, 5), Shown(NOW - 2000, 6)]
    assert store.read(1, 0, titles=[4, 6]) == [Shown(NOW - 9000, 4), Shown(NOW - 2000, 6)]
    assert store.read(2, 0) == [Shown(NOW, 4)]
    assert store.read(3, 0) == []


def test_expire_drops_whole_days(store: ImpressionStore) -> None:
    today = NOW // DAY_MS
    store.append(
        [row(title=1, timestamp=NOW - 3 * DAY_MS), row(title=2, timestamp=NOW - DAY_MS), row(title=3)]
    )
    assert store.expire(today - 1) == 1
    assert [title for _, title in store.read(1, 0)] == [2, 3]
    assert store.expire(today - 1) == 0
    assert store.expire(today + 1) == 2
    assert store.read(1, 0) == []
    store.append([row(title=9)])  # a day dropped can be written again
    assert store.read(1, 0) == [Shown(NOW, 9)]


rows = st.lists(
    st.builds(
        lambda p, t, s, offset: row(profile=p, title=t, section=s, timestamp=NOW - offset),
        st.integers(1, 3),
        st.integers(1, 4),
        st.sampled_from(["a", "b"]),
        st.integers(0, 3 * DAY_MS),
    ),
    max_size=20,
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(rows, min_size=1, max_size=4))
def test_a_store_holds_what_a_model_says(
    store: ImpressionStore, batches: list[list[StoredImpression]]
) -> None:
    tag = int.from_bytes(os.urandom(4), "big") * 10  # fresh profiles per example: the fixture is shared
    model: dict[bytes, StoredImpression] = {}
    for batch in batches:
        batch = [r._replace(profile=r.profile + tag) for r in batch]
        batch = [r._replace(key=KEY(_event(r))) for r in batch]
        new = store.append(batch)
        expected = {r.key for r in batch if r.key not in model}
        assert new == expected
        for r in batch:
            model.setdefault(r.key, r)
    for p in range(1, 4):
        kept = sorted(Shown(r.timestamp, r.title) for r in model.values() if r.profile == p + tag)
        assert store.read(p + tag, 0) == kept


def _event(r: StoredImpression):  # type: ignore[no-untyped-def]
    return impression(profile=r.profile, title=r.title, section=r.section, timestamp=r.timestamp)


# --- the store going away ---------------------------------------------------------------------------


def test_sqlite_that_has_gone_away_raises_store_unavailable(tmp_path: Path) -> None:
    s = SQLiteImpressionStore(tmp_path / "impressions.db")
    s.append([row()])
    s.close()
    with pytest.raises(StoreUnavailableError, match="closed") as caught:
        s.read(1, 0)
    assert caught.value.retry_after >= 1
    with pytest.raises(StoreUnavailableError):
        s.append([row(title=2)])


def test_sqlite_in_a_directory_that_cannot_be_written_raises_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises((StoreUnavailableError, OSError)):
        SQLiteImpressionStore(blocker / "impressions.db")


def test_sqlite_keeps_its_rows_across_a_reopen(tmp_path: Path) -> None:
    s = SQLiteImpressionStore(tmp_path / "impressions.db")
    s.append([row(title=1), row(title=2)])
    s.close()
    again = SQLiteImpressionStore(tmp_path / "impressions.db")
    assert again.append([row(title=1)]) == set()  # dedup survives the restart
    assert again.count() == 2
    again.close()


@pytest.mark.parametrize("_", [pytest.param(None, marks=services.needs("postgres"))])
def test_postgres_that_cannot_be_reached_raises_store_unavailable(_: None) -> None:
    from marrow.impressions.postgres import PostgresImpressionStore

    with pytest.raises(StoreUnavailableError, match="check that the server is up"):
        PostgresImpressionStore("postgresql://postgres@127.0.0.1:1/test", timeout_s=1.0)


@pytest.mark.parametrize("_", [pytest.param(None, marks=services.needs("postgres"))])
def test_postgres_recovers_when_its_connections_are_cut(_: None) -> None:
    import psycopg

    from marrow.impressions.postgres import PostgresImpressionStore

    table = f"impressions_test_{uuid.uuid4().hex[:10]}"
    s = PostgresImpressionStore(services.POSTGRES_DSN, table=table, pool_size=1, application_name=table)
    try:
        s.append([row(title=1)])
        with psycopg.connect(services.POSTGRES_DSN, autocommit=True) as admin:
            cut = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (table,),
            ).fetchall()
        assert cut == [(True,)]  # the store's one connection
        # the pool checks a connection before handing it out, so the cut one is replaced
        assert s.read(1, 0) == [Shown(NOW, 1)]
        assert s.append([row(title=2)]) != set()
    finally:
        s.drop()
        s.close()


@pytest.mark.parametrize("_", [pytest.param(None, marks=services.needs("postgres"))])
def test_postgres_partitions_by_day(_: None) -> None:
    import psycopg

    from marrow.impressions.postgres import PostgresImpressionStore

    table = f"impressions_test_{uuid.uuid4().hex[:10]}"
    s = PostgresImpressionStore(services.POSTGRES_DSN, table=table)
    try:
        s.append([row(title=1, timestamp=NOW - DAY_MS), row(title=2)])
        with psycopg.connect(services.POSTGRES_DSN) as db:
            names = {
                n
                for (n,) in db.execute(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
                    (table,),
                )
            }
        today = NOW // DAY_MS
        assert names == {f"{table}_d{today - 1}", f"{table}_d{today}"}
        assert s.expire(today) == 1
        assert s.read(1, 0) == [Shown(NOW, 2)]
    finally:
        s.drop()
        s.close()
