"""The store: an embedded, compressed, in-memory object store, versioned as snapshots and deltas.

from marrow import store

schema = store.Schema.from_classes(Title)
ws = store.WriteState(schema)
ws.add(Title(id=1, title="Dark", year=2017))
cycle = ws.commit()
state = store.ReadState.from_snapshot(cycle.snapshot())
state["Title"].get(1).title   # 'Dark'
"""

from marrow.store._views import RecordView
from marrow.store.blob import Blob, read_blob, read_header
from marrow.store.blobstore import (
    AnnouncementWatcher,
    Announcer,
    BlobRef,
    BlobRetriever,
    BlobStore,
    CarriedDeltas,
    DeltaCarrier,
    Publisher,
)
from marrow.store.consumer import Consumer, load_version
from marrow.store.cycle import Cycle
from marrow.store.history import History, diff
from marrow.store.index import HashIndex, PrefixIndex, PrimaryKeyIndex
from marrow.store.producer import Incremental, MinimumCount, Producer, RecordCountChange
from marrow.store.read import ReadState, TypeReader
from marrow.store.schema import Field, FieldType, Float, Int, Kind, ObjectSchema, Schema
from marrow.store.write import WriteState

__all__ = [
    "AnnouncementWatcher",
    "Announcer",
    "Blob",
    "BlobRef",
    "BlobRetriever",
    "BlobStore",
    "CarriedDeltas",
    "Consumer",
    "Cycle",
    "DeltaCarrier",
    "Field",
    "FieldType",
    "Float",
    "HashIndex",
    "History",
    "Incremental",
    "Int",
    "Kind",
    "MinimumCount",
    "ObjectSchema",
    "PrefixIndex",
    "PrimaryKeyIndex",
    "Producer",
    "Publisher",
    "ReadState",
    "RecordCountChange",
    "RecordView",
    "Schema",
    "TypeReader",
    "WriteState",
    "diff",
    "load_version",
    "read_blob",
    "read_header",
]
