"""Load generator for the impression history service: members browsing a synthetic catalogue.

A member's home page is ten rows of twenty titles drawn from a catalogue with Zipf-skewed popularity;
each member sees mostly the same rows from one visit to the next (rows are drawn from a generator
seeded by the member), as real home pages are. :class:`marrow.impressions.Simulator` turns each visit
into the events a device sends, one batch per visit.

Used by ``benchmarks/impressions.py`` in-process, and on its own against a running service::

    python benchmarks/impressions_load.py --url http://127.0.0.1:8791 --token s3cret --seconds 10

which prints one JSON line: batches and events sent per second, and the answers by HTTP status.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import numpy as np

from marrow.impressions import Impression, Screen, Section, Simulator, Visitor

CATALOGUE = 18_000  # titles (Netflix's catalogue, DESIGN.md §1)
ROWS, PER_ROW = 10, 20
DEVICES = ("tv", "web", "mobile")


class Catalogue:
    """Title ids and their popularity; a member's rows are drawn from it with a per-member seed."""

    def __init__(self, titles: int = CATALOGUE, seed: int = 1):
        ranks = np.arange(1, titles + 1, dtype=np.float64)
        p = ranks**-0.9
        self.p = p / p.sum()
        self.titles = titles
        self.seed = seed
        self._rows: dict[int, list[Section]] = {}

    def rows(self, profile: int) -> list[Section]:
        got = self._rows.get(profile)
        if got is None:
            rng = np.random.default_rng((self.seed, profile))
            picks = rng.choice(self.titles, size=ROWS * PER_ROW, replace=False, p=self.p)
            got = [Section(f"row-{r}", picks[r * PER_ROW : (r + 1) * PER_ROW].tolist()) for r in range(ROWS)]
            if len(self._rows) < 100_000:
                self._rows[profile] = got
        return got

    def browse(self, visitor: Visitor) -> Screen:
        rows = self.rows(visitor.profile)
        plays = {rows[0].titles[visitor.visit % PER_ROW]} if visitor.visit % 7 == 6 else set()
        return Screen("home", rows, plays=plays, cached=visitor.visit % 3 != 0)


def visits(
    catalogue: Catalogue, profiles: int, start_ms: int, span_ms: int, seed: int = 7, skew: float = 1.1
) -> Iterator[list[Impression]]:
    """Endless batches (one visit each) from ``profiles`` members (Zipf-skewed: some visit far more),
    stamped within ``span_ms`` after ``start_ms``."""
    sim = Simulator(catalogue.browse, seed=seed)
    rng = random.Random(seed)
    weights = [1 / (i + 1) ** skew for i in range(profiles)]
    while True:
        for profile in rng.choices(range(profiles), weights, k=1000):
            at = start_ms + rng.randrange(span_ms)
            yield sim.visit(profile, DEVICES[profile % 3], at).events


def in_threads(worker: Callable[[], None], count: int) -> float:
    """Run ``worker`` in ``count`` threads at once; the seconds until the last one returned."""
    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def run_http(
    url: str, token: str, seconds: float, concurrency: int = 4, profiles: int = 10_000
) -> dict[str, Any]:
    """Post visits to ``url``/events from ``concurrency`` threads for ``seconds``."""
    import httpx

    now = int(time.time() * 1000)
    batches = visits(Catalogue(), profiles, now - 3_600_000, 3_600_000)
    lock = threading.Lock()
    statuses: Counter[int] = Counter()
    sent = [0, 0]  # batches, events
    stop = time.monotonic() + seconds

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            while time.monotonic() < stop:
                with lock:
                    batch = next(batches)
                r = client.post("/events", content=msgspec.json.encode({"events": batch}))
                with lock:
                    statuses[r.status_code] += 1
                    sent[0] += 1
                    sent[1] += len(batch)
                if r.status_code in (429, 503):
                    time.sleep(float(r.headers.get("retry-after", "1")))

    elapsed = in_threads(worker, concurrency)
    return {
        "batches_per_s": round(sent[0] / elapsed, 1),
        "events_per_s": round(sent[1] / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8791")
    p.add_argument("--token", required=True)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--profiles", type=int, default=10_000)
    a = p.parse_args(argv)
    print(json.dumps(run_http(a.url, a.token, a.seconds, a.concurrency, a.profiles)))


if __name__ == "__main__":
    main()
