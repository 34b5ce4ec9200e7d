"""The ingestion worker: receives content events from the bus in batches and ingests them, retrying
each batch that fails until it is ingested.

A batch is acknowledged once :meth:`Ingestion.ingest` returns — content errors are outcomes, recorded
in the ledger, not failures. Anything else (the writer is down, the database is busy) sends every
event of the batch back with a delay that doubles per attempt up to ``max_delay``; JetStream (or the
in-process queue) delivers them again, for as long as it takes. Ingestion is idempotent, so an event
delivered twice changes nothing the second time.
"""

from __future__ import annotations

import logging
import threading

from marrow.cms.events import EventBus
from marrow.ingest.pipeline import Ingestion
from marrow.ingest.report import Report

__all__ = ["Worker"]

log = logging.getLogger(__name__)


class Worker:
    """Drains the bus into ingestion, in a background thread (``start`` / ``close``) or by hand."""

    def __init__(
        self,
        bus: EventBus,
        ingestion: Ingestion,
        batch: int = 1000,
        first_delay: float = 0.25,
        max_delay: float = 30.0,
    ):
        self.bus, self.ingestion, self.batch = bus, ingestion, batch
        self.first_delay, self.max_delay = first_delay, max_delay
        self.failures = 0  # batches that failed and were sent back (a metric)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, timeout: float = 1.0) -> Report | None:
        """Receive one batch (waiting up to ``timeout``) and ingest it; None when none came or it
        failed and was sent back."""
        deliveries = self.bus.receive(self.batch, timeout)
        if not deliveries:
            return None
        try:
            report = self.ingestion.ingest([d.event for d in deliveries])
        except Exception as e:  # anything that is not a content error may pass: retry
            self.failures += 1
            attempt = max(d.attempt for d in deliveries)
            delay = min(self.max_delay, self.first_delay * 2 ** (attempt - 1))
            log.warning("ingesting %d event(s) failed (attempt %d), again in %.2f s: %r", len(deliveries),
                        attempt, delay, e)  # fmt: skip
            for d in deliveries:
                d.retry(delay)
            return None
        for d in deliveries:
            d.ack()
        return report

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="marrow-ingest-worker", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once(timeout=0.5)
            except Exception as e:  # the bus itself failed: keep trying
                log.warning("receiving content events failed, retrying: %r", e)
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
