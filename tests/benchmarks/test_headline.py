"""`marrow bench headline --quick`: the whole legacy path on NATS and PostgreSQL beside Marrow, end to end.

What must hold whatever the machine's speed (no timing thresholds): both sides built the same pages,
every legacy edit became visible through the near-cache's timer, Marrow's pages made no network
call while the legacy ones made some, the figures the issue names are there, and the plots were drawn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import services

pytestmark = [pytest.mark.slow, *services.needs("nats"), *services.needs("postgres")]


def test_the_quick_headline_run(tmp_path: Path) -> None:
    cli = [sys.executable, "-c", "from marrow.cli import main; main()"]
    done = subprocess.run(
        [*cli, "bench", "headline", "--quick", "--json", "--plots", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    for name in (
        "page_speedup_p50",
        "page_speedup_p99",
        "preview_legacy_p50_s",
        "preview_marrow_p99_ms",
        "memory_ratio_vs_json",
    ):
        assert isinstance(figures[name], float) and figures[name] > 0, name
    assert figures["pages_identical"] is True
    assert figures["preview_legacy_not_visible"] == 0
    assert figures["legacy_pipeline_p50_ms"] > 0
    assert figures["network_calls_per_page_marrow"] == 0
    assert figures["network_calls_per_page_legacy"] >= 2  # at least the first fragment's two calls
    assert figures["kv_calls_per_page_legacy_per_section"] > figures["kv_calls_per_page_legacy"]
    assert figures["legacy_near_cache"]["refreshes"] > 0  # the timers fired
    assert sorted(Path(p).name for p in figures["plots"]) == [
        "headline_memory.png",
        "headline_pages.png",
        "headline_preview.png",
    ]
    assert all(Path(p).stat().st_size > 0 for p in figures["plots"])
