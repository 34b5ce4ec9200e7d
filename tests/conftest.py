"""Hypothesis settings for the whole suite.

Every property test prints, on failure, the ``@reproduce_failure(...)`` line that replays its
failing example; paste it above the test to debug. Example counts are set per test with
``@settings(max_examples=...)``, sized so that the suite runs in seconds in CI.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "marrow",
    print_blob=True,
    deadline=None,  # timings on shared CI machines vary too much for a per-example deadline
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("marrow")


# --- tests that need a service ---------------------------------------------------------------------
# Without the service they skip, with the reason. CI sets MARROW_REQUIRE_SERVICES=1: there a skipped
# service test fails the run, so CI cannot pass by skipping what it was meant to check.

SERVICE_MARKERS = ("nats", "s3", "browser", "postgres", "redis")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("MARROW_REQUIRE_SERVICES"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    # A whole module skipped at collection (no keywords to look at) counts as missed too.
    missed = [
        r for r in skipped if not hasattr(r, "keywords") or any(m in r.keywords for m in SERVICE_MARKERS)
    ]
    if missed:
        for r in missed:
            reason = r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr)
            print(f"\nMARROW_REQUIRE_SERVICES: {r.nodeid} was skipped: {reason}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
