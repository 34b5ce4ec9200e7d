"""Personalisation: ranking a row's candidates for one profile, from its impression history.

The :class:`Ranker` protocol takes a row's candidate title ids (best first, as the generator ordered
them) and the profile's history of those titles, and returns them re-ordered. The default,
:class:`FatigueRanker`, keeps the generator's order as the base score and lets two things sink a
title: being shown many times without being played (impression fatigue), and having been seen very
recently (so a page does not repeat what the visitor just scrolled past). With no history — a new
profile, a signed-out visitor, or history that did not arrive within its budget — the order is the
generator's, which is already sensible (popularity, recency, similarity).

Impression history is read for a whole page at once through :class:`HistoryReader` (the impression
history service implements it); any object with the same method will do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class TitleHistory(Protocol):
    """What the ranker needs to know of one title shown to one profile."""

    @property
    def shown_7d(self) -> int: ...

    @property
    def last_seen(self) -> float | None: ...


class HistoryReader(Protocol):
    def histories(self, profile: int, title_ids: Sequence[int]) -> Mapping[int, TitleHistory]:
        """The profile's history of each title it has been shown (titles never shown are absent)."""


class Ranker(Protocol):
    def rank(
        self, ids: np.ndarray, histories: Mapping[int, TitleHistory], played: set[int], now: float
    ) -> np.ndarray:
        """``ids`` re-ordered for the profile."""


@dataclass(frozen=True)
class FatigueRanker:
    """Generator order, sunk by impression fatigue and recency.

    score = 1 / (1 + position) × ``fatigue`` ** (times shown in 7 days without a play / ``per``),
    and × ``recent_factor`` if seen within ``recent_s`` seconds. A played title is not fatigued.
    """

    fatigue: float = 0.5
    per: float = 3.0
    recent_s: float = 600.0
    recent_factor: float = 0.2

    def rank(
        self,
        ids: np.ndarray,
        histories: Mapping[int, TitleHistory],
        played: set[int],
        now: float | None = None,
    ) -> np.ndarray:
        if not histories or not len(ids):
            return ids
        now = time.time() if now is None else now
        score = 1.0 / (1.0 + np.arange(len(ids), dtype=np.float64))
        for i, tid in enumerate(ids.tolist()):
            h = histories.get(tid)
            if h is None:
                continue
            if tid not in played and h.shown_7d:
                score[i] *= self.fatigue ** (h.shown_7d / self.per)
            if h.last_seen is not None and now - h.last_seen < self.recent_s:
                score[i] *= self.recent_factor
        return ids[np.argsort(-score, kind="stable")]
