"""A small catalogue in three versions, held by a consumer with a history, for the explorer's tests.

Version 1: 120 titles (three pages of 50), 10 people, awards (no primary key) and availability (a
two-field primary key). Version 2: title 1 modified, title 2 deleted, title 500 added. Version 3 (a full
cycle): person 3 renamed, which changes every title that refers to it. Some values are chosen to be awkward:
markup in a title, NaN and infinity, bytes, nulls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marrow.store import Schema, WriteState
from marrow.store.consumer import Consumer
from marrow.store.history import History
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore
from marrow.store.producer import Incremental, Producer

SCHEMA = Schema.parse(
    """
    Person @PrimaryKey(id) {
        long id;
        string name;
    }
    Award {
        string name;
        int year;
    }
    Title @PrimaryKey(id) {
        long id;
        string title;
        int year;
        double score;
        boolean kids;
        bytes poster;
        Person director;
        list<Person> cast;
        set<string> genres;
        map<string, int> extra;
        list<Award> awards;
    }
    Availability @PrimaryKey(title, country) {
        long title;
        string country;
        boolean available;
    }
    """
)

PEOPLE = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov",
          "Donald Knuth", "Frances Allen", "John Backus", "Margaret Hamilton", "Niklaus Wirth"]  # fmt: skip
SPECIAL_TITLES = {1: "Dark", 3: "The Dark Knight", 7: "<script>alert('x')</script> & Co"}
WORDS = ["Amber", "Bright", "Cold", "Distant", "Echo", "Falling", "Golden", "Hidden", "Iron", "Jade"]
GENRES = ["drama", "crime", "noir", "comedy"]


def person(i: int, name: str | None = None) -> dict[str, Any]:
    return {"id": i, "name": name or PEOPLE[i - 1]}


def title(i: int, people: dict[int, dict[str, Any]], year: int | None = None) -> dict[str, Any]:
    """Title ``i``: director person ``i % 10 + 1``, a cast of three, genres by ``i``."""
    score = float("nan") if i == 5 else float("inf") if i == 6 else round(i * 0.37 % 10, 2)
    return {
        "id": i,
        "title": SPECIAL_TITLES.get(i, f"{WORDS[i % 10]} {WORDS[i // 10 % 10]} {i}"),
        "year": year if year is not None else 1990 + i % 30,
        "score": score,
        "kids": i % 2 == 0,
        "poster": bytes([i % 256, 0xFF]) if i % 3 == 0 else None,
        "director": people[i % 10 + 1],
        "cast": [people[(i + k) % 10 + 1] for k in range(3)],
        "genres": {GENRES[i % 4], GENRES[i % 3]},
        "extra": {"rank": i, "seasons": i % 4},
        "awards": [{"name": "Oscar", "year": 2000 + i % 20}] if i % 10 == 0 else [],
    }


def availability(write: WriteState) -> None:
    for t in range(1, 6):
        for country in ("US", "FR"):
            write.add({"title": t, "country": country, "available": country == "US"}, "Availability")


@dataclass
class Catalogue:
    """The consumer (at version 3), its history, and the blob store and announcer it reads."""

    consumer: Consumer
    history: History
    blobs: InMemoryBlobStore
    announcer: InMemoryAnnouncer


def build() -> Catalogue:
    """Run the three cycles, refreshing the consumer after each so that its history holds them all."""
    blobs, announcer = InMemoryBlobStore(), InMemoryAnnouncer()
    producer = Producer(SCHEMA, blobs, announcer)
    history = History()
    consumer = Consumer(blobs, announcer, listeners=[history])
    people = {i: person(i) for i in range(1, 11)}

    def version_1(write: WriteState) -> None:
        for i in range(1, 121):
            write.add(title(i, people), "Title")
        availability(write)

    def version_2(changes: Incremental) -> None:
        changes.add_or_modify(title(1, people, year=2017), "Title")
        changes.delete("Title", 2)
        changes.add_or_modify(title(500, people) | {"title": "Zebra Crossing"}, "Title")

    def version_3(write: WriteState) -> None:
        # A full cycle, so that the titles referring to person 3 are written anew with it.
        people[3] = person(3, "Grace Brewster Hopper")
        for i in [1, *range(3, 121), 500]:
            t = title(i, people, year=2017 if i == 1 else None)
            write.add(t | {"title": "Zebra Crossing"} if i == 500 else t, "Title")
        availability(write)

    producer.run_cycle(version_1)
    consumer.refresh()
    producer.run_incremental(version_2)
    consumer.refresh()
    producer.run_cycle(version_3)
    consumer.refresh()
    return Catalogue(consumer, history, blobs, announcer)
