"""The CMS: the write side of the content platform (DESIGN.md §5).

Editorial documents (:mod:`marrow.cms.model`) with drafts, revisions, publish and unpublish,
optimistic concurrency and an audit, in SQLite by default or PostgreSQL at scale; editors and their
sessions; and the events every change emits to ingestion (:mod:`marrow.cms.events`)::

    from marrow import cms

    store = cms.CMS.open("sqlite:///var/cms.db")
    saved = store.save("story", None, cms.Story(headline="Hello", slug="hello"), base=None, editor="ana")
    store.publish("story", saved.item.id, editor="ana", revision=saved.item.revision)

:func:`marrow.cms.sample.generate` makes the sample content at the seed's scale.
"""

from marrow.cms.database import Database, PostgresDatabase, SQLiteDatabase, connect
from marrow.cms.editors import Editor, Editors, Session, hash_password, verify_password
from marrow.cms.events import (
    CHANNELS,
    ContentEvent,
    Delivery,
    EventBus,
    InProcessBus,
    Ledger,
    LedgerEntry,
    Outbox,
    Relay,
)
from marrow.cms.items import AuditEntry, Item, RevisionInfo, Saved, Version, as_document
from marrow.cms.model import (
    KINDS,
    PLACEHOLDER,
    Asset,
    Block,
    Collection,
    Document,
    ImageBlock,
    PageLayout,
    Person,
    SectionSpec,
    Story,
    TextBlock,
    Title,
    TitleCard,
    VideoEmbed,
    Window,
    label_of,
    references,
    slug_of,
)
from marrow.cms.settings import CMSSettings
from marrow.cms.store import CMS

__all__ = [
    "CHANNELS",
    "CMS",
    "KINDS",
    "PLACEHOLDER",
    "Asset",
    "AuditEntry",
    "Block",
    "CMSSettings",
    "Collection",
    "ContentEvent",
    "Database",
    "Delivery",
    "Document",
    "Editor",
    "Editors",
    "EventBus",
    "ImageBlock",
    "InProcessBus",
    "Item",
    "Ledger",
    "LedgerEntry",
    "Outbox",
    "PageLayout",
    "Person",
    "PostgresDatabase",
    "Relay",
    "RevisionInfo",
    "SQLiteDatabase",
    "Saved",
    "SectionSpec",
    "Session",
    "Story",
    "TextBlock",
    "Title",
    "TitleCard",
    "Version",
    "VideoEmbed",
    "Window",
    "as_document",
    "connect",
    "hash_password",
    "label_of",
    "references",
    "slug_of",
    "verify_password",
]
