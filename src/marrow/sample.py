"""A deterministic sample catalogue for the demo and the benchmarks.

Titles have an id, a name made of two to four words, a synopsis drawn from a pool of shared texts
(as catalogue text is: many titles share boilerplate), three small integers and a cast of five
people. Word and cast popularity are skewed (Zipf-like), as real catalogues are. The same seed
always gives the same catalogue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np

from marrow.store import Int

_CONSONANTS = [*"bcdfghjklmnprstvwz", "ch", "sh", "th", "st", "br", "cr", "gr", "tr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]


@dataclass(slots=True, frozen=True)
class Person:
    __primary_key__ = "id"
    id: int
    name: str


@dataclass(slots=True, frozen=True)
class Title:
    __primary_key__ = "id"
    id: int
    title: str
    synopsis: str
    year: Int
    maturity: Int
    runtime: Int
    cast: list[Person]


def words(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct pronounceable words."""
    out: set[str] = set()
    while len(out) < n:
        syllables = rng.integers(1, 4)
        w = "".join(
            _CONSONANTS[rng.integers(len(_CONSONANTS))] + _VOWELS[rng.integers(len(_VOWELS))]
            for _ in range(syllables)
        )
        if rng.random() < 0.3:
            w += _CONSONANTS[rng.integers(len(_CONSONANTS))]
        out.add(w)
    return sorted(out)


def _zipf_choice(rng: np.random.Generator, n: int, size: int | tuple[int, ...], a: float = 1.1) -> np.ndarray:
    ranks = np.arange(1, n + 1, dtype=np.float64)
    p = ranks**-a
    p /= p.sum()
    return rng.choice(n, size=size, p=p)


@dataclass
class Catalogue:
    people: list[Person]
    titles: list[Title]


def catalogue(n_titles: int, n_people: int = 50_000, n_synopses: int = 50_000, seed: int = 7) -> Catalogue:
    """Generate a catalogue. About 1 s per 200,000 titles."""
    rng = np.random.default_rng(seed)
    vocab = words(8_000, rng)
    cap = [w.capitalize() for w in vocab]
    first = words(2_000, rng)
    last = words(5_000, rng)
    fi = _zipf_choice(rng, len(first), n_people, 0.8)
    li = rng.integers(0, len(last), n_people)
    people = [
        Person(i + 1, f"{first[a].capitalize()} {last[b].capitalize()}")
        for i, (a, b) in enumerate(zip(fi.tolist(), li.tolist(), strict=True))
    ]
    # Synopses: 20-40 words each, skewed word frequencies.
    n_syn = min(n_synopses, max(1, n_titles))
    lengths = rng.integers(20, 41, n_syn)
    syn_words = _zipf_choice(rng, len(vocab), int(lengths.sum()), 1.05).tolist()
    synopses = []
    pos = 0
    for n in lengths.tolist():
        s = " ".join(vocab[w] for w in syn_words[pos : pos + n])
        synopses.append(s[0].upper() + s[1:] + ".")
        pos += n
    # Titles: 2-4 capitalised words, often "The ..."; a number now and then keeps them distinct.
    tl = rng.integers(2, 5, n_titles)
    tw = _zipf_choice(rng, len(cap), int(tl.sum()), 0.9).tolist()
    the = rng.random(n_titles) < 0.2
    numbered = rng.random(n_titles) < 0.1
    numbers = rng.integers(2, 10, n_titles)
    syn_pick = _zipf_choice(rng, n_syn, n_titles, 0.6)
    years = rng.integers(1950, 2027, n_titles)
    maturity = rng.choice([0, 7, 13, 16, 18], n_titles)
    runtime = rng.integers(20, 181, n_titles)
    cast_ix = _zipf_choice(rng, n_people, (n_titles, 5), 0.7)
    titles = []
    pos = 0
    cols = zip(
        tl.tolist(),
        the.tolist(),
        numbered.tolist(),
        numbers.tolist(),
        syn_pick.tolist(),
        years.tolist(),
        maturity.tolist(),
        runtime.tolist(),
        strict=True,
    )
    for i, (n, t, num, k, sp, y, m, r) in enumerate(cols):
        name = " ".join(cap[w] for w in tw[pos : pos + n])
        pos += n
        if t:
            name = "The " + name
        if num:
            name = f"{name} {k}"
        cast = [people[j] for j in cast_ix[i].tolist()]
        titles.append(Title(i * 7 + 100_000, name, synopses[sp], y, m, r, cast))
    return Catalogue(people, titles)


def revised(titles: list[Title], share: float, rng: random.Random, suffix: str) -> list[Title]:
    """A catalogue edit: ``share`` of the titles, each renamed with ``suffix`` and a longer runtime."""
    picked = rng.sample(titles, max(1, int(len(titles) * share)))
    return [replace(t, title=t.title + suffix, runtime=t.runtime + 1) for t in picked]
