"""A small render-ready dataset for the page construction tests, built in a few milliseconds.

Titles 1…N: genres cycle through GENRES, title *i* is available in every country but "FR" when *i* is
odd, maturity cycles 0/7/13/16/18, popularity falls with the id (title 1 is the most popular), and
newer ids were added later. Stories feature titles; collections curate them.
"""

from __future__ import annotations

import json

from marrow import records, store

GENRES = ["Drama", "Comedy", "Thriller", "Romance", "Documentary"]
COUNTRIES = ["US", "DE", "FR", "JP", "BR"]
MATURITY = [0, 7, 13, 16, 18]


def title(i: int, name: str | None = None) -> records.Title:
    genres = [GENRES[i % len(GENRES)], GENRES[(i // 7) % len(GENRES)]]
    countries = frozenset(c for c in COUNTRIES if not (c == "FR" and i % 2))
    return records.Title(
        id=i,
        slug=f"title-{i}",
        name=name or f"Title {i} {GENRES[i % len(GENRES)].lower()} tale",
        kind="movie" if i % 3 else "show",
        synopsis=f"The synopsis of title {i}.",
        year=1990 + i % 35,
        maturity=MATURITY[i % len(MATURITY)],
        runtime=90 + i % 60,
        genres=list(dict.fromkeys(genres)),
        cast=[f"Actor {i % 17}", f"Actor {i % 23}"],
        countries=countries,
        popularity=1_000_000 - i * 1000,
        added=1_700_000_000 + i * 3600,
        artwork={d: f"https://cdn.example/{d}/title-{i}.jpg" for d in records.DEVICES},
    )


def story(i: int, titles: list[int]) -> records.Story:
    return records.Story(
        id=i,
        slug=f"story-{i}",
        headline=f"Story {i}: behind the scenes",
        summary=f"Summary {i}",
        body=json.dumps([{"kind": "text", "html": f"<p>Body of story {i}</p>"}]),
        hero={d: f"https://cdn.example/{d}/story-{i}.jpg" for d in records.DEVICES},
        titles=titles,
        genres=[GENRES[i % len(GENRES)]],
        published=1_700_000_000 + i * 86_400,
        revision=1,
    )


def state(
    n_titles: int = 300,
    n_stories: int = 30,
    names: dict[int, str] | None = None,
    layouts: tuple[records.Layout, ...] = (),
) -> store.ReadState:
    names = names or {}
    ws = store.WriteState(store.Schema.from_classes(*records.TYPES))
    for i in range(1, n_titles + 1):
        ws.add(title(i, names.get(i)))
    for i in range(1, n_stories + 1):
        ws.add(story(i, [i, i + 1]))
    ws.add(records.Collection(1, "award-winners", "Award winners", [250, 12, 7, 99], 1))
    for layout in layouts:
        ws.add(layout)
    return store.ReadState.from_snapshot(ws.commit(version=1).snapshot())
