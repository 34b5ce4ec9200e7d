"""A simulator of members browsing: it turns the pages they are shown into the impression events a
device would send.

Its input is a plain callable, ``browse(visitor) -> Screen``: the page the visitor is shown (its
sections, in order, each a row of title ids) and the titles they play. The demo gives it the real page
construction; tests and the load generator give it a few lines. From each screen the simulator
decides what the visitor actually sees, as a device would measure it:

* the first rows are in view when the page appears (``scroll = "none"``); the visitor scrolls down
  through more (``"down"``), sometimes back up to the top (``"up"``);
* in a row, the first titles are wholly visible and the next one only partly (its ``visible_share``
  is under a half, so the default filter drops it); sometimes the visitor scrolls a row right
  (``"right"``) to see more of it;
* each row stays in view for a random time (exponential, mean ``dwell_ms``): rows scrolled past
  quickly give impressions under a second, which the default filter drops too;
* ``cached_page`` is the screen's ``cached`` flag.

The visitor plays the first title of ``Screen.plays`` they saw, which ends the visit. The same seed
and the same calls give the same events.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import NamedTuple

from marrow.errors import ConfigError
from marrow.impressions.events import Impression, Scroll

__all__ = ["VIEWPORTS", "Screen", "Section", "Simulator", "Visit", "Visitor"]

#: device → (rows in view, titles wholly visible per row)
VIEWPORTS: Mapping[str, tuple[int, int]] = {"tv": (2, 5), "web": (3, 6), "mobile": (2, 3)}


class Section(NamedTuple):
    """One row of a page: its name and its titles, in order."""

    name: str
    titles: Sequence[int]


class Screen(NamedTuple):
    """What ``browse`` returns: the page shown to a visitor, and what they would play on it."""

    page: str
    sections: Sequence[Section]
    plays: Collection[int] = ()
    cached: bool = False  #: the page came from a cache, not a new request


class Visitor(NamedTuple):
    """Who is browsing, on what, when (ms since the epoch), and how many visits they made before."""

    profile: int
    device: str
    at: int
    visit: int = 0


class Visit(NamedTuple):
    """What one visit produced: the events the device sends, the title played (if any), and when
    the visit ended (ms)."""

    events: list[Impression]
    played: int | None
    ended: int


Browse = Callable[[Visitor], Screen]


class Simulator:
    """Visits pages from ``browse`` and emits the impressions a device would report."""

    def __init__(
        self,
        browse: Browse,
        seed: int = 0,
        viewports: Mapping[str, tuple[int, int]] = VIEWPORTS,
        dwell_ms: float = 2500.0,
        deeper: float = 0.6,
        scroll_right: float = 0.3,
        back_up: float = 0.1,
    ):
        self.browse = browse
        self.rng = random.Random(seed)
        self.viewports = viewports
        self.dwell_ms = dwell_ms
        self.deeper = deeper  #: chance, at each row, of scrolling one row further down
        self.scroll_right = scroll_right  #: chance of scrolling a row right once
        self.back_up = back_up  #: chance of scrolling back up to the top row at the end
        self._visits: dict[int, int] = {}

    def visit(self, profile: int, device: str, at: int) -> Visit:
        """One visit of ``profile`` on ``device`` starting at ``at`` (ms)."""
        if device not in self.viewports:
            raise ConfigError(f"no viewport for device {device!r}; known: {', '.join(self.viewports)}")
        count = self._visits.get(profile, 0)
        self._visits[profile] = count + 1
        screen = self.browse(Visitor(profile, device, at, count))
        rows_in_view, per_row = self.viewports[device]
        rng = self.rng
        events: list[Impression] = []
        now = at
        shown_rows = min(len(screen.sections), rows_in_view)
        while shown_rows < len(screen.sections) and rng.random() < self.deeper:
            shown_rows += 1
        seen: list[int] = []
        for r, section in enumerate(screen.sections[:shown_rows]):
            scroll: Scroll = "none" if r < rows_in_view else "down"
            now = self._row(events, seen, screen, section, scroll, 0, per_row, device, profile, now)
            if rng.random() < self.scroll_right and len(section.titles) > per_row:
                now = self._row(
                    events, seen, screen, section, "right", per_row, per_row, device, profile, now
                )
        if shown_rows > rows_in_view and screen.sections and rng.random() < self.back_up:
            now = self._row(events, seen, screen, screen.sections[0], "up", 0, per_row, device, profile, now)
        played = next((t for t in seen if t in screen.plays), None)
        return Visit(events, played, now)

    def _row(
        self,
        events: list[Impression],
        seen: list[int],
        screen: Screen,
        section: Section,
        scroll: Scroll,
        first: int,
        per_row: int,
        device: str,
        profile: int,
        now: int,
    ) -> int:
        """Emit what is in view of one row from its title ``first``; the time the row leaves view."""
        rng = self.rng
        dwell = max(50, int(rng.expovariate(1.0 / self.dwell_ms)))
        titles = section.titles[first : first + per_row + 1]
        for i, title in enumerate(titles):
            whole = i < per_row
            share = round(rng.uniform(0.9, 1.0) if whole else rng.uniform(0.1, 0.45), 3)
            events.append(
                Impression(
                    profile=profile,
                    title=title,
                    page=screen.page,
                    section=section.name,
                    position=first + i,
                    device=device,
                    timestamp=now + rng.randint(0, 80),  # artwork loads in a row's first moments
                    visible_share=share,
                    visible_ms=dwell,
                    scroll=scroll,
                    cached_page=screen.cached,
                )
            )
            if whole:
                seen.append(title)
        return now + dwell
