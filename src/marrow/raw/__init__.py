"""Read-after-write: a writer, a durable write log, and local clients with an in-flight overlay.

    ns = Namespace.open("var/content", schema)          # log, blobs, announcement, lease: one directory
    with ns.writer() as writer:                          # the one active writer (and folding producer)
        offset = writer.bulk_update([Upsert(title)], request_id="save-1")
    with ns.client() as client:                          # in any process of the host
        client.view(offset=offset)["Title"].get(title.id)   # read your write
        client.view()["Title"].find("genres", "Drama")      # eventual: at once, from memory

See docs/raw.md for the roles, the guarantees and how failures behave.
"""

from marrow.raw.client import Consistency, LocalClient
from marrow.raw.filelog import FileWriteLog
from marrow.raw.fold import Folder
from marrow.raw.lease import FileLease, InMemoryLease, Lease
from marrow.raw.log import Entry, InMemoryWriteLog, LogReader, LogWriter, WriteLog
from marrow.raw.ops import BulkUpdate, Change, Delete, Expect, Upsert
from marrow.raw.overlay import FOLDED_OFFSET, Overlay, folded_offset
from marrow.raw.record import OverlayRecord
from marrow.raw.view import Dataset, Records, TypeView, View
from marrow.raw.writer import Writer

__all__ = [
    "FOLDED_OFFSET",
    "BulkUpdate",
    "Change",
    "Consistency",
    "Dataset",
    "Delete",
    "Entry",
    "Expect",
    "FileLease",
    "FileWriteLog",
    "Folder",
    "InMemoryLease",
    "InMemoryWriteLog",
    "Lease",
    "LocalClient",
    "LogReader",
    "LogWriter",
    "Overlay",
    "OverlayRecord",
    "Records",
    "TypeView",
    "Upsert",
    "View",
    "WriteLog",
    "Writer",
    "folded_offset",
]
