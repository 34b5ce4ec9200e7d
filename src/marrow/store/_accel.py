"""The optional C accelerator, or None.

``MARROW_PURE=1`` in the environment makes Marrow use its pure-Python / numpy twins even where the
extension is built; the tests run both ways.
"""

from __future__ import annotations

import os
from typing import Any

speedups: Any = None
if not os.environ.get("MARROW_PURE"):
    try:
        from marrow.store import _speedups as speedups  # type: ignore[attr-defined,no-redef]
    except ImportError:  # pragma: no cover - machines without a C compiler
        speedups = None

ACCELERATED = speedups is not None
