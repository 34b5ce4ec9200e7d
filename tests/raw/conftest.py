"""The ``stack`` fixture of the read-after-write tests (see raw_stack.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from raw_stack import Stack, make_stack


@pytest.fixture
def stack() -> Iterator[Stack]:
    yield from make_stack()
