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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class TitleHistory(Protocol):
    """What the ranker needs to know of one title shown to one profile."""

    @property
    def count_7d(self) -> int:
        """Times shown in the last 7 days."""

    @property
    def last_seen(self) -> int | None:
        """When last shown, in milliseconds since the epoch (None: not in the history's window)."""


class HistoryReader(Protocol):
    def histories(self, profile: int, title_ids: Sequence[int]) -> Mapping[int, TitleHistory]:
        """The profile's history of each title it has been shown (titles never shown are absent)."""


@dataclass(frozen=True)
class Seen:
    """A profile's impression history of a page's candidates, as arrays by sorted title id, built
    once per fragment so that every row ranks with vectorised lookups."""

    ids: np.ndarray  # sorted title ids the profile has been shown
    shown_7d: np.ndarray  # times shown in the last 7 days, 0 for a title it played
    last_seen: np.ndarray  # seconds since the epoch (-inf: never)

    @classmethod
    def of(cls, histories: Mapping[int, TitleHistory], played: set[int]) -> Seen:
        # most candidates were never shown (the history service answers them too): skip those first
        shown = sorted((i, h) for i, h in histories.items() if h.last_seen is not None)
        ids = np.fromiter((i for i, _ in shown), dtype=np.int64, count=len(shown))
        counts = np.fromiter(
            (0 if i in played else h.count_7d for i, h in shown), dtype=np.float64, count=len(shown)
        )
        last = np.fromiter((h.last_seen / 1000 for _, h in shown), dtype=np.float64, count=len(shown))  # type: ignore[operator]
        return cls(ids, counts, last)

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Times shown in 7 days and last seen for each of ``ids`` (0 and -inf when never shown)."""
        if not len(self.ids):
            return np.zeros(len(ids)), np.full(len(ids), -np.inf)
        at = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        hit = self.ids[at] == ids
        return np.where(hit, self.shown_7d[at], 0.0), np.where(hit, self.last_seen[at], -np.inf)


class Ranker(Protocol):
    def rank(self, ids: np.ndarray, seen: Seen, now: float) -> np.ndarray:
        """Positions of ``ids`` in the order the profile should see them (a permutation)."""


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

    def rank(self, ids: np.ndarray, seen: Seen, now: float) -> np.ndarray:
        score = 1.0 / (1.0 + np.arange(len(ids), dtype=np.float64))
        if len(seen) and len(ids):
            shown, last = seen.lookup(ids)
            score *= self.fatigue ** (shown / self.per)
            score[now - last < self.recent_s] *= self.recent_factor
        return np.argsort(-score, kind="stable")
