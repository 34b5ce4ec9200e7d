"""Impression history: what each member has been shown, for personalisation (DESIGN.md §5).

Events (:class:`Impression`) are validated, filtered and deduplicated by a configurable key, taken
through a bounded buffer (:class:`Collector`, with backpressure) into a store behind a small protocol
(:class:`ImpressionStore`: in memory, SQLite by default, PostgreSQL at scale), and read per profile
for many titles at once (:class:`HistoryReader`) through a node cache and an optional shared cache,
rolled out in shadow and dialled up by percentage (:class:`Rollout`).

    from marrow import impressions

    service = impressions.ImpressionHistory.open(impressions.ImpressionSettings(store="memory"))
    service.submit([{"profile": 1, "title": 7, ...}])
    service.histories(1, [7, 8, 9])   # {7: TitleHistory(count_1d=1, ...), 8: UNSEEN, 9: UNSEEN}

Page construction depends only on :class:`HistoryReader` (and :class:`NoHistory` without the service).
"""

from marrow.impressions.cache import InMemorySharedCache, NodeCache, SharedCache
from marrow.impressions.events import Impression, Refusal, Scroll
from marrow.impressions.ingest import Collector, Receipt
from marrow.impressions.query import UNSEEN, HistoryReader, NoHistory, ProfileImpressions, TitleHistory
from marrow.impressions.rollout import Mismatch, Rollout
from marrow.impressions.service import HistoryAnswer, ImpressionHistory, SequenceAnswer, open_store
from marrow.impressions.settings import ImpressionSettings
from marrow.impressions.simulator import Screen, Section, Simulator, Visitor
from marrow.impressions.store import (
    DedupKey,
    ImpressionStore,
    InMemoryImpressionStore,
    Shown,
    StoredImpression,
)

__all__ = [
    "UNSEEN",
    "Collector",
    "DedupKey",
    "HistoryAnswer",
    "HistoryReader",
    "Impression",
    "ImpressionHistory",
    "ImpressionSettings",
    "ImpressionStore",
    "InMemoryImpressionStore",
    "InMemorySharedCache",
    "Mismatch",
    "NoHistory",
    "NodeCache",
    "ProfileImpressions",
    "Receipt",
    "Refusal",
    "Rollout",
    "Screen",
    "Scroll",
    "Section",
    "SequenceAnswer",
    "SharedCache",
    "Shown",
    "Simulator",
    "StoredImpression",
    "TitleHistory",
    "Visitor",
    "open_store",
]
