"""The service's figures: plain counters on the hot paths, exported to Prometheus by a collector.

Counting is an integer increment (no lock, no label lookup) because it happens on every read; the
Prometheus side reads the integers when it is scraped. Without a lock, two threads incrementing the
same counter at the same instant can lose an increment: the figures are exact in one thread and may
undercount slightly under contention, which rates and ratios tolerate. Each service has its own
registry, so several services in one process (tests, benchmarks) do not mix their figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

#: event outcomes counted in ``events``
OUTCOMES = ("stored", "duplicate", "filtered", "rejected", "refused")
#: where an answer came from, counted in ``answers``
SOURCES = ("node", "shared", "store", "stale")


class Metrics:
    """Counters of one service. ``gauges`` are read when scraped (buffer size, cache entries, ...)."""

    def __init__(self) -> None:
        self.hits = {"node": 0, "shared": 0}
        self.misses = {"node": 0, "shared": 0}
        #: store reads by why: a cache miss, a profile not dialled up, a shadow comparison
        self.store_reads = {"miss": 0, "uncached": 0, "shadow": 0}
        self.answers = dict.fromkeys(SOURCES, 0)
        self.events = dict.fromkeys(OUTCOMES, 0)
        self.flushes = 0
        self.store_errors = 0
        self.gauges: dict[str, Callable[[], float]] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Export(self))

    def hit_rate(self) -> float | None:
        """Share of cached-path reads answered by a cache (node or shared) without the store."""
        hits = self.hits["node"] + self.hits["shared"]
        total = hits + self.store_reads["miss"]
        return hits / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "hits": dict(self.hits),
            "misses": dict(self.misses),
            "store_reads": dict(self.store_reads),
            "hit_rate": self.hit_rate(),
            "answers": dict(self.answers),
            "events": dict(self.events),
            "flushes": self.flushes,
            "store_errors": self.store_errors,
            **{name: read() for name, read in self.gauges.items()},
        }

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)


class _Export(Collector):
    def __init__(self, metrics: Metrics):
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m
        families: list[tuple[str, str, str, dict[str, int]]] = [
            ("marrow_impressions_cache_hits", "Reads answered by a cache", "tier", m.hits),
            ("marrow_impressions_cache_misses", "Reads a cache could not answer", "tier", m.misses),
            ("marrow_impressions_store_reads", "Reads of the backing store", "reason", m.store_reads),
            ("marrow_impressions_answers", "History answers by source", "source", m.answers),
            ("marrow_impressions_events", "Events by outcome", "outcome", m.events),
        ]
        for name, doc, label, values in families:
            family = CounterMetricFamily(name, doc, labels=[label])
            for key, value in values.items():
                family.add_metric([key], value)
            yield family
        yield CounterMetricFamily(
            "marrow_impressions_flushes", "Batches written to the store", value=m.flushes
        )
        yield CounterMetricFamily(
            "marrow_impressions_store_errors", "Store calls that failed", value=m.store_errors
        )
        for name, read in m.gauges.items():
            yield GaugeMetricFamily(f"marrow_impressions_{name}", name.replace("_", " "), value=read())
