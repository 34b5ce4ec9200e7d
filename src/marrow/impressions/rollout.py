"""Rolling a cache path out: shadow, then dial-up.

Each profile falls in a fixed place of two independent ``[0, 1)`` scales, drawn from its id by a
64-bit mixing hash (SplitMix64's finaliser, salted per scale): stable across processes and restarts,
and well spread even for small consecutive ids, so a profile stays on the same path on
every node, and a share of 1% is the same 1% until the setting changes (raising it keeps the profiles
already in and adds more).

* **dial-up** — a profile whose first place is under ``dial_up`` is answered from the cache; the
  others from the store.
* **shadow** — a profile whose second place is under ``shadow_share`` is answered from both: the
  store's answer is compared with the cache's, and a difference is counted and kept as an example
  (the newest ``shadow_examples``). Which answer is served still follows dial-up, so a shadow costs a
  store read but changes nothing a member sees.

The usual rollout: ``shadow_share = 0.01, dial_up = 0`` until mismatches are understood, then raise
``dial_up`` step by step (watching hits, backing-store reads and mismatches), keeping a shadow share
as a standing check.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from marrow.impressions.query import TitleHistory

__all__ = ["Mismatch", "Rollout"]

_DIAL_UP = 0x9E3779B97F4A7C15  # salts: one scale per decision
_SHADOW = 0xC2B2AE3D27D4EB4F
_MASK = 2**64 - 1


def place(profile: int, salt: int) -> float:
    """Where ``profile`` falls on a [0, 1) scale: SplitMix64's finaliser of the salted id."""
    z = (profile + salt) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) / 2**64


class Mismatch(msgspec.Struct, frozen=True):
    """A shadow comparison that differed: per title, what the cache said and what the store said."""

    profile: int
    at: int  #: ms since the epoch
    source: str  #: which cache answered: "node" or "shared"
    titles: dict[int, tuple[TitleHistory, TitleHistory]]  #: title → (cache, store)


class Rollout:
    """Which path each profile takes, and what the shadow comparisons found."""

    def __init__(self, dial_up: float, shadow_share: float, examples: int = 20):
        self.dial_up = dial_up
        self.shadow_share = shadow_share
        self.comparisons = 0
        self.mismatches = 0
        self._examples: deque[Mismatch] = deque(maxlen=examples)
        self._lock = threading.Lock()

    def cached(self, profile: int) -> bool:
        """Whether ``profile`` is answered from the cache."""
        return self.dial_up >= 1.0 or place(profile, _DIAL_UP) < self.dial_up

    def shadowed(self, profile: int) -> bool:
        """Whether ``profile``'s cached answers are compared with the store's."""
        return self.shadow_share > 0.0 and place(profile, _SHADOW) < self.shadow_share

    def compare(
        self,
        profile: int,
        at: int,
        source: str,
        cached: Mapping[int, TitleHistory],
        stored: Mapping[int, TitleHistory],
    ) -> bool:
        """Record a comparison; whether the answers agreed."""
        differ = {t: (cached[t], stored[t]) for t in stored if cached.get(t) != stored[t]}
        with self._lock:
            self.comparisons += 1
            if differ:
                self.mismatches += 1
                self._examples.appendleft(Mismatch(profile, at, source, differ))
        return not differ

    def examples(self) -> Sequence[Mismatch]:
        """The newest mismatches first."""
        with self._lock:
            return list(self._examples)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dial_up": self.dial_up,
            "shadow_share": self.shadow_share,
            "comparisons": self.comparisons,
            "mismatches": self.mismatches,
            "examples": msgspec.to_builtins(self.examples(), str_keys=True),
        }
