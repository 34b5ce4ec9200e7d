"""A small catalogue for the property tests: its schema, a Hypothesis strategy for successive versions
of it, and what each version should hold.

Persons are referenced by titles (``director``, ``cast``) and sometimes written on their own; awards
have no primary key, so equal awards are one record. A :class:`Version` keeps references as person
ids, so a person whose content changes changes every title that refers to it, as in the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from marrow.store import ReadState, Schema, WriteState
from marrow.store.testing import canonical

SCHEMA = Schema.parse(
    """
    Person @PrimaryKey(id) {
        long id;
        string name;
        bytes photo;
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
        float rating;
        boolean kids;
        Person director;
        list<Person> cast;
        set<string> genres;
        map<string, int> extra;
        list<Award> awards;
    }
    """
)

# A long column cannot hold both -2**63 and 2**63 - 1: that range uses every 64-bit code and leaves
# none for null (test_write checks the refusal), so generated ids stop one short of it.
LONG_MIN, LONG_MAX = -(2**63) + 1, 2**63 - 1
INT_MIN, INT_MAX = -(2**31), 2**31 - 1

# Values that make distinct but related words: case, accents, multi-character casefolds, spaces.
PHRASES = [
    "Dark",
    "dark",
    "The Dark Knight",
    "the dark",
    "Straße",
    "STRASSE",
    "naïve art",
    "ΣΊΣΥΦΟΣ",
    "日本 映画",
    "a",
    "",
    " leading space",
]

ids = st.one_of(st.integers(-3, 40), st.integers(LONG_MIN, LONG_MAX))
ints = st.one_of(st.integers(-3, 3), st.integers(INT_MIN, INT_MAX))
doubles = st.floats(allow_nan=True, allow_infinity=True)
floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
varied_text = st.one_of(st.sampled_from(PHRASES), st.text(max_size=12))
genres = st.one_of(st.sampled_from(["drama", "Drama", "crime", "noir", "sci-fi", ""]), st.text(max_size=5))
awards = st.fixed_dictionaries(
    {"name": st.one_of(st.none(), st.sampled_from(["Oscar", "BAFTA", "Palme"])), "year": st.none() | ints}
)


def optional(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | s


@dataclass
class Version:
    """One version of the catalogue, as written. Titles refer to persons by id."""

    persons: dict[int, dict[str, Any]]  # the pool a version may refer to
    standalone: list[int]  # persons written on their own (repeats allowed)
    titles: dict[int, dict[str, Any]] = field(default_factory=dict)

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, record) in write order; titles carry their persons and awards as nested records."""
        for pid in self.standalone:
            yield "Person", dict(self.persons[pid])
        for t in self.titles.values():
            yield "Title", self.nested(t)

    def by_type(self) -> dict[str, list[dict[str, Any]]]:
        """The records grouped by type, as :func:`marrow.store.testing.round_trip_snapshot` takes them."""
        out: dict[str, list[dict[str, Any]]] = {"Person": [], "Title": []}
        for type_name, record in self.records():
            out[type_name].append(record)
        return out

    def nested(self, t: dict[str, Any]) -> dict[str, Any]:
        # A new NaN object each time, as a producer reading its source afresh every cycle would have:
        # equal records must be equal however their NaNs were made.
        out = {k: float("nan") if isinstance(v, float) and math.isnan(v) else v for k, v in t.items()}
        if t["director"] is not None:
            out["director"] = dict(self.persons[t["director"]])
        if t["cast"] is not None:
            out["cast"] = [dict(self.persons[p]) for p in t["cast"]]
        return out

    def write(self, ws: WriteState) -> None:
        for type_name, record in self.records():
            ws.add(record, type_name)

    def person_ids(self) -> set[int]:
        """Ids of the persons this version holds: standalone and referenced."""
        out = set(self.standalone)
        for t in self.titles.values():
            if t["director"] is not None:
                out.add(t["director"])
            out.update(t["cast"] or ())
        return out

    # --- what the version should hold, as comparable keys ----------------------------------------

    def person_key(self, pid: int) -> tuple[Any, ...]:
        p = self.persons[pid]
        return (p["id"], p["name"], p["photo"])

    def keys(self) -> dict[str, set[tuple[Any, ...]]]:
        """Per type, the records as deep keys (references replaced by the key of their target)."""
        titles = set()
        for t in self.titles.values():
            titles.add(
                title_key(
                    t,
                    None if t["director"] is None else self.person_key(t["director"]),
                    None if t["cast"] is None else [self.person_key(p) for p in t["cast"]],
                    None if t["awards"] is None else [award_key(a) for a in t["awards"]],
                )
            )
        award_keys = {award_key(a) for t in self.titles.values() for a in t["awards"] or ()}
        return {
            "Person": {self.person_key(p) for p in self.person_ids()},
            "Award": award_keys,
            "Title": titles,
        }

    def expected_title_dict(self, tid: int) -> dict[str, Any]:
        """What ``view.to_dict()`` (depth 1) of this title should give, in :func:`canonical` form."""
        d = self.nested(self.titles[tid])
        d["genres"] = None if d["genres"] is None else sorted(d["genres"])
        return canonical(d)  # type: ignore[no-any-return]


def award_key(a: dict[str, Any]) -> tuple[Any, ...]:
    return (a["name"], a["year"])


def title_key(t: dict[str, Any], director: Any, cast: Any, award_keys: Any) -> tuple[Any, ...]:
    return (
        t["id"],
        t["title"],
        t["year"],
        canonical(t["score"]),
        canonical(t["rating"]),
        t["kids"],
        director,
        None if cast is None else tuple(cast),
        None if t["genres"] is None else frozenset(t["genres"]),
        None if t["extra"] is None else frozenset(t["extra"].items()),
        None if award_keys is None else tuple(award_keys),
    )


def state_keys(state: ReadState) -> dict[str, dict[int, tuple[Any, ...]]]:
    """Per type, ordinal → deep key of the record there, read from ``state`` in bulk."""
    p = state["Person"].read(state["Person"].ordinals())
    persons = {
        o: (p["id"][i], p["name"][i], p["photo"][i])
        for i, o in enumerate(state["Person"].ordinals().tolist())
    }
    a = state["Award"].read(state["Award"].ordinals())
    award = {o: (a["name"][i], a["year"][i]) for i, o in enumerate(state["Award"].ordinals().tolist())}
    tords = state["Title"].ordinals().tolist()
    t = state["Title"].read(tords)
    titles = {}
    for i, o in enumerate(tords):
        row = {f: t[f][i] for f in t}
        titles[o] = title_key(
            row,
            None if row["director"] is None else persons[row["director"]],
            None if row["cast"] is None else [persons[c] for c in row["cast"]],
            None if row["awards"] is None else [award[x] for x in row["awards"]],
        )
    return {"Person": persons, "Award": award, "Title": titles}


# --- strategies --------------------------------------------------------------------------------------


def title_fields(person_ids: list[int], text: st.SearchStrategy[str]) -> dict[str, st.SearchStrategy[Any]]:
    """A strategy per title field (all but ``id``); references are person ids from ``person_ids``."""
    refs = st.sampled_from(sorted(person_ids)) if person_ids else None
    return {
        "title": optional(text),
        "year": optional(ints),
        "score": optional(doubles),
        "rating": optional(floats32),
        "kids": optional(st.booleans()),
        "director": optional(refs) if refs is not None else st.none(),
        "cast": optional(st.lists(refs, max_size=5) if refs is not None else st.just([])),
        "genres": optional(st.sets(genres, max_size=4)),
        "extra": optional(st.dictionaries(genres, ints, max_size=3)),
        "awards": optional(st.lists(awards, max_size=3)),
    }


@st.composite
def person(draw: st.DrawFn, pid: int, text: st.SearchStrategy[str]) -> dict[str, Any]:
    return {"id": pid, "name": draw(optional(text)), "photo": draw(optional(st.binary(max_size=6)))}


@st.composite
def title(draw: st.DrawFn, tid: int, person_ids: list[int], text: st.SearchStrategy[str]) -> dict[str, Any]:
    return {"id": tid, **{k: draw(s) for k, s in title_fields(person_ids, text).items()}}


@st.composite
def versions(draw: st.DrawFn, max_versions: int = 4, max_titles: int = 20) -> list[Version]:
    """Successive versions: persons and titles are kept, modified, removed and added between them.

    A dataset is either *repetitive* (text from a few phrases, so string columns go to dict mode
    once a type has 16 records) or *varied* (any text).
    """
    text = st.sampled_from(PHRASES) if draw(st.booleans(), label="repetitive") else varied_text
    pool_ids = draw(st.lists(ids, unique=True, max_size=max_titles))
    pool = {pid: draw(person(pid, text)) for pid in pool_ids}
    standalone = draw(st.lists(st.sampled_from(pool_ids), max_size=6)) if pool_ids else []
    title_ids = draw(st.lists(ids, unique=True, max_size=max_titles))
    v = Version(pool, standalone, {tid: draw(title(tid, pool_ids, text)) for tid in title_ids})
    out = [v]
    for _ in range(draw(st.integers(0, max_versions - 1), label="more versions")):
        v = draw(next_version(v, text, max_titles))
        out.append(v)
    return out


@st.composite
def next_version(draw: st.DrawFn, prev: Version, text: st.SearchStrategy[str], max_titles: int) -> Version:
    pool = dict(prev.persons)
    for pid in sorted(pool):
        if draw(st.integers(0, 3)) == 0:  # modify
            pool[pid] = draw(person(pid, text))
    for pid in draw(st.lists(ids, max_size=4)):
        pool.setdefault(pid, draw(person(pid, text)))
    pool_ids = sorted(pool)
    standalone = (
        draw(st.lists(st.sampled_from(pool_ids), max_size=6))
        if pool_ids and draw(st.booleans())
        else list(prev.standalone)
    )
    titles: dict[int, dict[str, Any]] = {}
    if draw(st.integers(0, 7)) > 0:  # else: every title goes
        fields = title_fields(pool_ids, text)
        for tid, t in prev.titles.items():
            action = draw(st.sampled_from(["keep", "keep", "modify", "remove"]))
            if action == "keep":
                titles[tid] = t
            elif action == "modify":
                name = draw(st.sampled_from(sorted(fields)))
                titles[tid] = {**t, name: draw(fields[name])}
    for tid in draw(st.lists(ids, max_size=max(0, max_titles - len(titles)), unique=True)):
        titles.setdefault(tid, draw(title(tid, pool_ids, text)))
    return Version(pool, standalone, titles)


def commit_all(vs: list[Version]) -> Iterator[tuple[int, Any, ReadState]]:
    """Write each version in its own cycle of one producer: (version number, cycle, loaded snapshot)."""
    ws = WriteState(SCHEMA)
    for k, v in enumerate(vs):
        v.write(ws)
        cycle = ws.commit(version=k)
        yield k, cycle, ReadState.from_snapshot(cycle.snapshot())
