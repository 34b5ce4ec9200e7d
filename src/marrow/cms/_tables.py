"""The CMS's tables, in the SQL both engines run (see :mod:`marrow.cms.database`).

* ``content``   one row per document: its latest revision (the draft), the published one (or NULL),
  the slug (unique per kind) and what lists and searches show;
* ``revisions`` every revision of every document, as JSON — never updated, never deleted;
* ``audit``     who did what, when: saves (with the fields they changed), publishes, sign-ins;
* ``outbox``    the events of saves and publishes, written in the same transaction as the change,
  until they are handed to the event bus (the transactional outbox: no change without its event);
* ``ingested``  per channel and document, the last event ingestion applied and its outcome (the
  offset of the write, or the errors) — what makes ingestion idempotent;
* ``editors``, ``sessions`` sign-in: scrypt password hashes, and sessions by the SHA-256 of their
  token (a stolen table holds no usable token).
"""

from __future__ import annotations

from marrow.cms.database import Database

SCHEMA_VERSION = 1


def create_tables(db: Database) -> None:
    """Create the tables and indexes that do not exist yet (idempotent)."""
    serial = db.serial_key
    statements = [
        """CREATE TABLE IF NOT EXISTS content (
            kind TEXT NOT NULL,
            id BIGINT NOT NULL,
            revision INTEGER NOT NULL,
            published_revision INTEGER,
            slug TEXT,
            label TEXT NOT NULL,
            search TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            created_by TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            updated_by TEXT NOT NULL,
            published_at DOUBLE PRECISION,
            PRIMARY KEY (kind, id))""",
        "CREATE UNIQUE INDEX IF NOT EXISTS content_slug ON content (kind, slug)",
        "CREATE INDEX IF NOT EXISTS content_updated ON content (kind, updated_at)",
        """CREATE TABLE IF NOT EXISTS revisions (
            kind TEXT NOT NULL,
            id BIGINT NOT NULL,
            revision INTEGER NOT NULL,
            body TEXT NOT NULL,
            author TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (kind, id, revision))""",
        f"""CREATE TABLE IF NOT EXISTS audit (
            seq {serial},
            at DOUBLE PRECISION NOT NULL,
            editor TEXT NOT NULL,
            action TEXT NOT NULL,
            kind TEXT,
            id BIGINT,
            revision INTEGER,
            detail TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_content ON audit (kind, id)",
        f"""CREATE TABLE IF NOT EXISTS outbox (
            seq {serial},
            at DOUBLE PRECISION NOT NULL,
            action TEXT NOT NULL,
            kind TEXT NOT NULL,
            id BIGINT NOT NULL,
            revision INTEGER NOT NULL,
            editor TEXT NOT NULL,
            relayed_at DOUBLE PRECISION)""",
        "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (relayed_at, seq)",
        """CREATE TABLE IF NOT EXISTS ingested (
            channel TEXT NOT NULL,
            kind TEXT NOT NULL,
            id BIGINT NOT NULL,
            seq BIGINT NOT NULL,
            revision INTEGER NOT NULL,
            action TEXT NOT NULL,
            write_offset BIGINT,
            errors TEXT,
            at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (channel, kind, id))""",
        """CREATE TABLE IF NOT EXISTS editors (
            username TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            password TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE IF NOT EXISTS sessions (
            token TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES editors (username),
            csrf TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]
    with db.transaction() as tx:
        for sql in statements:
            tx.execute(sql)
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
            (str(SCHEMA_VERSION),),
        )
