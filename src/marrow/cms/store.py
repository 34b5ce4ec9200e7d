"""The CMS store: documents with drafts, revisions, publish and unpublish, and an audit.

Lifecycle of a document::

    saved = cms.save("story", None, doc, base=None, editor="ana")    # created: revision 1, a draft
    saved = cms.save("story", 7, doc2, base=1, editor="ana")         # revision 2
    cms.publish("story", 7, editor="ana", revision=2)                # visitors see revision 2
    cms.unpublish("story", 7, editor="ana")                          # visitors see nothing

Invariants:

* every save writes a new revision (1, 2, 3 … per document); revisions are never changed or deleted;
* **optimistic concurrency** — a save names the revision it was based on (``base``); if the document
  has moved on, the save is refused with a :class:`~marrow.errors.RevisionConflictError` naming both revisions
  and nothing is written. A publish may name the revision the editor saw, with the same check;
* the latest revision is the draft; the published revision is the one visitors see, or none;
* each change writes, **in the same transaction**, its audit entry and its event in the outbox
  (:mod:`marrow.cms.events`), so there is no change without its event and no event without its change;
* a slug is unique per kind, across every document's latest revision.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import msgspec

from marrow.cms._tables import create_tables
from marrow.cms.database import Database, Transaction, connect
from marrow.cms.editors import Editors
from marrow.cms.events import Ledger, Outbox
from marrow.cms.items import AuditEntry, Item, RevisionInfo, Saved, Version, as_document, check_kind
from marrow.cms.model import KINDS, Document, label_of, slug_of
from marrow.errors import ContentError, NotFoundError, RevisionConflictError

__all__ = ["CMS"]

_ENCODER = msgspec.json.Encoder()
_DECODERS = {kind: msgspec.json.Decoder(cls) for kind, cls in KINDS.items()}
_COLUMNS = "kind, id, revision, published_revision, updated_at, updated_by, slug, label"


class CMS:
    """Editorial content in a SQL database (SQLite by default, PostgreSQL at scale).

    ``cms.editors`` holds sign-in (:class:`~marrow.cms.editors.Editors`), ``cms.outbox`` the events
    waiting for the event bus, ``cms.ledger`` what ingestion has applied.
    """

    def __init__(self, db: Database, clock: Any = time.time):
        self.db = db
        self.clock = clock
        create_tables(db)
        self.editors = Editors(db, clock)
        self.outbox = Outbox(db, clock)
        self.ledger = Ledger(db, clock)

    @classmethod
    def open(cls, url: str) -> CMS:
        """A CMS over the database at ``url`` (see :func:`marrow.cms.database.connect`)."""
        return cls(connect(url))

    def close(self) -> None:
        self.db.close()

    # --- writing ----------------------------------------------------------------------------------

    def save(
        self,
        kind: str,
        id: int | None,
        doc: Document | dict[str, Any],
        *,
        base: int | None,
        editor: str,
    ) -> Saved:
        """Save ``doc`` as the next revision of ``(kind, id)``, based on revision ``base``.

        ``base=None`` creates the document (``id=None`` picks the next free id). Raises
        RevisionConflictError when ``base`` is not the latest revision (or the document exists already),
        ContentError when the document is malformed or its slug is taken.
        """
        doc = as_document(kind, doc)
        body = _ENCODER.encode(doc).decode()
        slug, label = slug_of(doc), label_of(doc)
        for attempt in range(3):
            try:
                with self.db.transaction() as tx:
                    return self._save(tx, kind, id, doc, body, slug, label, base, editor)
            except Exception as e:
                if not self.db.is_unique_violation(e):
                    raise
                taken = self._slug_owner(kind, slug)
                if taken is not None and taken != id:
                    raise ContentError(
                        f"slug {slug!r} is taken by {kind} {taken}; choose another slug"
                    ) from None
                if id is not None or attempt == 2:  # two creates raced for one id: take the next
                    raise RevisionConflictError(
                        f"{kind} {id} was created by someone else meanwhile; reload it and edit that",
                        base,
                        None,
                    ) from None
        raise AssertionError("unreachable")

    def _save(
        self,
        tx: Transaction,
        kind: str,
        id: int | None,
        doc: Document,
        body: str,
        slug: str | None,
        label: str,
        base: int | None,
        editor: str,
    ) -> Saved:
        now = self.clock()
        search = f"{label} {slug or ''}".lower()
        if base is None:
            if id is None:
                ((id,),) = tx.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM content WHERE kind = ?", (kind,))
            else:
                found = tx.execute("SELECT revision FROM content WHERE kind = ? AND id = ?", (kind, id))
                if found:
                    raise RevisionConflictError(
                        f"{kind} {id} exists already (revision {found[0][0]}); a save that creates "
                        f"it cannot be applied: reload it and edit revision {found[0][0]}",
                        None,
                        found[0][0],
                    )
            revision, old = 1, None
            tx.execute(
                "INSERT INTO content (kind, id, revision, slug, label, search, created_at, created_by, "
                "updated_at, updated_by) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
                (kind, id, slug, label, search, now, editor, now, editor),
            )
        else:
            if id is None:
                raise ContentError("a save based on a revision must name the document's id")
            revision = base + 1
            changed = tx.execute(
                "UPDATE content SET revision = ?, slug = ?, label = ?, search = ?, updated_at = ?, "
                "updated_by = ? WHERE kind = ? AND id = ? AND revision = ? RETURNING id",
                (revision, slug, label, search, now, editor, kind, id, base),
            )
            if not changed:
                current = self._revision(tx, kind, id)
                raise RevisionConflictError(
                    f"{kind} {id} is at revision {current} now, but this save was based on revision "
                    f"{base}: someone saved meanwhile. Reload revision {current}, reapply your change "
                    f"and save again",
                    base,
                    current,
                )
            old = _DECODERS[kind].decode(self._body(tx, kind, id, base))
        tx.execute(
            "INSERT INTO revisions (kind, id, revision, body, author, at) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, id, revision, body, editor, now),
        )
        detail = {"fields": _changed_fields(old, doc)}
        return self._emit(tx, "saved", kind, id, revision, editor, now, detail)

    def publish(self, kind: str, id: int, *, editor: str, revision: int | None = None) -> Saved:
        """Publish the latest revision (which must be ``revision`` when it is given)."""
        check_kind(kind)
        with self.db.transaction() as tx:
            current = self._revision(tx, kind, id)
            if revision is not None and revision != current:
                raise RevisionConflictError(
                    f"{kind} {id} is at revision {current}, not {revision} as the publish expected; "
                    f"review revision {current} before publishing it",
                    revision,
                    current,
                )
            now = self.clock()
            tx.execute(
                "UPDATE content SET published_revision = ?, published_at = COALESCE(published_at, ?) "
                "WHERE kind = ? AND id = ?",
                (current, now, kind, id),
            )
            return self._emit(tx, "published", kind, id, current, editor, now, {})

    def unpublish(self, kind: str, id: int, *, editor: str) -> Saved:
        """Take a document off the site; its revisions stay, and it can be published again."""
        check_kind(kind)
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT published_revision FROM content WHERE kind = ? AND id = ?", (kind, id))
            if not rows:
                raise NotFoundError(f"there is no {kind} {id}")
            if rows[0][0] is None:
                raise ContentError(f"{kind} {id} is not published; there is nothing to unpublish")
            now = self.clock()
            tx.execute("UPDATE content SET published_revision = NULL WHERE kind = ? AND id = ?", (kind, id))
            return self._emit(tx, "unpublished", kind, id, rows[0][0], editor, now, {})

    def _emit(
        self,
        tx: Transaction,
        action: str,
        kind: str,
        id: int,
        revision: int,
        editor: str,
        now: float,
        detail: dict[str, Any],
    ) -> Saved:
        self.audit_in(tx, editor, action, kind, id, revision, detail)
        event = self.outbox.append(tx, action, kind, id, revision, editor, now)
        item = self._item(tx, kind, id, with_doc=False)
        return Saved(item, event)

    def audit_in(
        self,
        tx: Transaction,
        editor: str,
        action: str,
        kind: str | None = None,
        id: int | None = None,
        revision: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record an audit entry inside transaction ``tx``."""
        tx.execute(
            "INSERT INTO audit (at, editor, action, kind, id, revision, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.clock(), editor, action, kind, id, revision, _ENCODER.encode(detail or {}).decode()),
        )

    def import_documents(
        self,
        documents: Iterable[tuple[str, int, Document]],
        *,
        editor: str,
        publish: bool = True,
        published_at: Mapping[tuple[str, int], float] | None = None,
    ) -> int:
        """Load many new documents in one transaction (revision 1, published unless ``publish=False``).

        The bulk path for a catalogue or the sample: one audit entry for the whole import, and one
        event per document (ingestion takes them in batches). Refused whole if any document exists
        already. ``published_at`` gives documents first published before the import (stories of an
        archive) their date. Returns the number of documents imported.
        """
        now = self.clock()
        dates = published_at or {}
        content, revisions, events = [], [], []
        action = "published" if publish else "saved"
        for kind, id, doc in documents:
            doc = as_document(kind, doc)
            slug, label = slug_of(doc), label_of(doc)
            content.append(
                (kind, id, 1 if publish else None, slug, label, f"{label} {slug or ''}".lower(), now, editor,
                 now, editor, dates.get((kind, id), now) if publish else None)
            )  # fmt: skip
            revisions.append((kind, id, _ENCODER.encode(doc).decode(), editor, now))
            events.append((now, action, kind, id, 1, editor))
        try:
            with self.db.transaction() as tx:
                tx.executemany(
                    "INSERT INTO content (kind, id, revision, published_revision, slug, label, search, "
                    "created_at, created_by, updated_at, updated_by, published_at) "
                    "VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    content,
                )
                tx.executemany(
                    "INSERT INTO revisions (kind, id, revision, body, author, at) VALUES (?, ?, 1, ?, ?, ?)",
                    revisions,
                )
                self.audit_in(tx, editor, "imported", detail={"documents": len(content)})
                self.outbox.append_many(tx, events)
                return len(content)
        except Exception as e:
            if self.db.is_unique_violation(e):
                raise ContentError(
                    f"the import clashes with documents already in the CMS (an id or a slug): {e}; "
                    f"nothing was imported"
                ) from None
            raise

    # --- reading ----------------------------------------------------------------------------------

    def get(self, kind: str, id: int) -> Item:
        """The document's latest revision (its draft), decoded. NotFoundError when there is none."""
        check_kind(kind)
        with self.db.transaction() as tx:
            return self._item(tx, kind, id, with_doc=True)

    def revision(self, kind: str, id: int, revision: int) -> Document:
        """The document as it was at ``revision``."""
        check_kind(kind)
        with self.db.transaction() as tx:
            return _DECODERS[kind].decode(self._body(tx, kind, id, revision))

    def documents(
        self, kind: str, ids: Sequence[int] | None = None, *, published: bool = False
    ) -> dict[int, Version]:
        """``id → Version`` of many documents at once: the latest revisions, or with
        ``published=True`` the published ones (unpublished documents are left out). ``ids=None``:
        all of the kind. Absent ids are left out."""
        check_kind(kind)
        column = "published_revision" if published else "revision"
        sql = (
            "SELECT r.id, r.revision, r.body, c.published_at FROM content c JOIN revisions r "
            f"ON r.kind = c.kind AND r.id = c.id AND r.revision = c.{column} WHERE c.kind = ?"
        )
        decode = _DECODERS[kind].decode
        out: dict[int, Version] = {}
        with self.db.transaction() as tx:
            if ids is None:
                rows = tx.execute(sql, (kind,))
            else:
                rows = []
                unique = list(dict.fromkeys(ids))
                for i in range(0, len(unique), 500):  # well under both engines' parameter limits
                    chunk = unique[i : i + 500]
                    marks = ", ".join("?" * len(chunk))
                    rows += tx.execute(f"{sql} AND c.id IN ({marks})", (kind, *chunk))
        for id, revision, body, published_at in rows:
            out[id] = Version(revision, decode(body), published_at)
        return out

    def at_revisions(self, kind: str, wanted: Sequence[tuple[int, int]]) -> dict[int, Version]:
        """``id → Version`` for exact ``(id, revision)`` pairs (what an event names); pairs that do
        not exist are left out."""
        check_kind(kind)
        decode = _DECODERS[kind].decode
        out: dict[int, Version] = {}
        pairs = list(dict.fromkeys(wanted))
        with self.db.transaction() as tx:
            for i in range(0, len(pairs), 500):
                chunk = pairs[i : i + 500]
                # a join against the wanted pairs: both engines then look each one up by primary key
                wanted_rows = ", ".join("(CAST(? AS BIGINT), CAST(? AS INTEGER))" for _ in chunk)
                rows = tx.execute(
                    f"WITH w (id, revision) AS (VALUES {wanted_rows}) "
                    "SELECT r.id, r.revision, r.body, c.published_at FROM w JOIN revisions r "
                    "ON r.kind = ? AND r.id = w.id AND r.revision = w.revision "
                    "JOIN content c ON c.kind = r.kind AND c.id = r.id",
                    (*[v for pair in chunk for v in pair], kind),
                )
                for id, revision, body, published_at in rows:
                    out[id] = Version(revision, decode(body), published_at)
        return out

    def search(
        self, kind: str, query: str = "", *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Item], int]:
        """A page of documents, most recently updated first, whose label or slug contains ``query``
        (case-insensitive), with the total that matched. ``status``: draft, published or changed."""
        check_kind(kind)
        where, params = ["kind = ?"], [kind]
        if query.strip():
            escaped = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("search LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        if status == "draft":
            where.append("published_revision IS NULL")
        elif status == "published":
            where.append("published_revision = revision")
        elif status == "changed":
            where.append("published_revision < revision")
        elif status is not None:
            raise ContentError(f"unknown status {status!r}: use draft, published or changed")
        clause = " AND ".join(where)
        with self.db.transaction() as tx:
            ((total,),) = tx.execute(f"SELECT COUNT(*) FROM content WHERE {clause}", params)
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM content WHERE {clause} ORDER BY updated_at DESC, id DESC "
                f"LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
        return [Item(*r) for r in rows], total

    def revisions(self, kind: str, id: int) -> list[RevisionInfo]:
        """Every revision of a document, newest first."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT revision, author, at FROM revisions WHERE kind = ? AND id = ? ORDER BY revision DESC",
                (kind, id),
            )
        if not rows:
            raise NotFoundError(f"there is no {kind} {id}")
        return [RevisionInfo(*r) for r in rows]

    def audit(self, kind: str | None = None, id: int | None = None, limit: int = 100) -> list[AuditEntry]:
        """Audit entries, newest first: all of them, or of one document."""
        where, params = "", []
        if kind is not None:
            where, params = "WHERE kind = ? AND id = ?", [kind, id]
        with self.db.transaction() as tx:
            rows = tx.execute(
                f"SELECT seq, at, editor, action, kind, id, revision, detail FROM audit {where} "
                f"ORDER BY seq DESC LIMIT ?",
                (*params, limit),
            )
        return [
            AuditEntry(seq, at, editor, action, kind, id, revision, msgspec.json.decode(detail))
            for seq, at, editor, action, kind, id, revision, detail in rows
        ]

    # --- internals --------------------------------------------------------------------------------

    def _item(self, tx: Transaction, kind: str, id: int, with_doc: bool) -> Item:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM content WHERE kind = ? AND id = ?", (kind, id))
        if not rows:
            raise NotFoundError(f"there is no {kind} {id}")
        item = Item(*rows[0])
        if with_doc:
            item = replace(item, doc=_DECODERS[kind].decode(self._body(tx, kind, id, item.revision)))
        return item

    def _revision(self, tx: Transaction, kind: str, id: int) -> int:
        rows = tx.execute("SELECT revision FROM content WHERE kind = ? AND id = ?", (kind, id))
        if not rows:
            raise NotFoundError(f"there is no {kind} {id}")
        return int(rows[0][0])

    def _body(self, tx: Transaction, kind: str, id: int, revision: int) -> str:
        rows = tx.execute(
            "SELECT body FROM revisions WHERE kind = ? AND id = ? AND revision = ?", (kind, id, revision)
        )
        if not rows:
            raise NotFoundError(f"{kind} {id} has no revision {revision}")
        return str(rows[0][0])

    def _slug_owner(self, kind: str, slug: str | None) -> int | None:
        if slug is None:
            return None
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT id FROM content WHERE kind = ? AND slug = ?", (kind, slug))
        return int(rows[0][0]) if rows else None


def _changed_fields(old: Document | None, new: Document) -> list[str]:
    """Top-level fields that differ between two revisions (all of them for a new document)."""
    fields = new.__struct_fields__
    if old is None:
        return list(fields)
    return [f for f in fields if getattr(old, f) != getattr(new, f)]
