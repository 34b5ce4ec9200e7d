"""Markers for tests that need a running service: the marker plus a skip, with the reason, when the
service cannot be reached. Checked once per service, on first use.

    pytestmark = services.needs("postgres")

Under ``MARROW_REQUIRE_SERVICES=1`` (CI) the suite's conftest turns such a skip into a failure.
"""

from __future__ import annotations

import functools
import socket

import pytest

#: service marker → (host, port) it listens on in development and CI (DESIGN.md §6)
ADDRESSES = {
    "postgres": ("127.0.0.1", 5432),
    "redis": ("127.0.0.1", 6379),
    "nats": ("127.0.0.1", 4222),
}

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"


@functools.cache
def unreachable(service: str) -> str | None:
    """Why ``service`` cannot be used here, or None when it answers on its port."""
    host, port = ADDRESSES[service]
    try:
        with socket.create_connection((host, port), timeout=1):
            return None
    except OSError as e:
        return f"{service} is not reachable on {host}:{port} ({e}); start it (DESIGN.md §6)"


def needs(service: str) -> list[pytest.MarkDecorator]:
    """The marker of ``service`` and a skip, with the reason, when it is down."""
    reason = unreachable(service)
    return [getattr(pytest.mark, service), pytest.mark.skipif(reason is not None, reason=reason or "")]
