"""Hypothesis settings for the whole suite.

Every property test prints, on failure, the ``@reproduce_failure(...)`` line that replays its
failing example; paste it above the test to debug. Example counts are set per test with
``@settings(max_examples=...)``, sized so that the suite runs in seconds in CI.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "marrow",
    print_blob=True,
    deadline=None,  # timings on shared CI machines vary too much for a per-example deadline
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("marrow")
