"""The optional C accelerator, or None.

``MARROW_PURE=1`` in the environment makes Marrow use its pure-Python / numpy twins even where the
extension is built; the tests run both ways.
"""

from __future__ import annotations

import importlib
import os
from typing import Any


def _load() -> Any:
    if os.environ.get("MARROW_PURE"):
        return None
    try:
        return importlib.import_module("marrow.store._speedups")
    except ImportError:  # pragma: no cover - machines without a C compiler
        return None


speedups: Any = _load()
ACCELERATED: bool = speedups is not None
