"""Short GIL turns while a version switch runs.

A thread that wants CPython's GIL waits up to the *switch interval* (``sys.getswitchinterval()``,
5 ms by default) before it asks the holder to let go. So while a consumer's refresh runs Python
between its blocking calls — parsing a snapshot's header, building a version's readers, telling
listeners — a reader thread of the same process waits until the refresh blocks again: about a
millisecond for a mapped snapshot of a million records, more for a delta applied in the heap
(benchmarks/RESULTS.md, lifecycle run 9). With the interval lowered for as long as a switch runs, the
two take turns every ``interval`` instead, and a reader waits at most about that long.

The interval is process-wide, so :data:`TURNS` counts who holds it lowered: the value in force before
the first hold comes back after the last one ends — unless something else set another value
meanwhile, which is then left alone.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

#: the switch interval a consumer sets while it switches versions (seconds)
SWITCH_INTERVAL = 0.0002


class Turns:
    """Holds CPython's switch interval lowered while at least one hold is open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holds = 0
        self._saved = self._set = 0.0  # the interval before the first hold, and what it set

    def enter(self, interval: float) -> None:
        with self._lock:
            if self._holds == 0:
                self._saved = sys.getswitchinterval()
                self._set = min(interval, self._saved)
                sys.setswitchinterval(self._set)
            self._holds += 1

    def leave(self) -> None:
        with self._lock:
            if self._holds == 0:
                raise RuntimeError("Turns.leave without a matching enter")
            self._holds -= 1
            if self._holds == 0 and _same(sys.getswitchinterval(), self._set):  # not changed since
                sys.setswitchinterval(self._saved)

    @property
    def holds(self) -> int:
        return self._holds

    @contextlib.contextmanager
    def held(self, interval: float | None) -> Iterator[None]:
        """Lowered to ``interval`` inside the block; ``None``: left as it is."""
        if interval is None:
            yield
            return
        self.enter(interval)
        try:
            yield
        finally:
            self.leave()


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 2e-6  # CPython keeps the interval in whole microseconds, truncated


TURNS = Turns()  #: the process's one
