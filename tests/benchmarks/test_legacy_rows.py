"""The row lists the legacy consumer precomputes, and what it writes per batch."""

from __future__ import annotations

import json
from dataclasses import replace

from legacy_data import consumed

from legacy import keys
from marrow import records


def title(
    i: int,
    popularity: int,
    countries: set[str],
    maturity: int = 0,
    genres: tuple[str, ...] = ("Drama",),
    added: int = 0,
) -> records.Title:
    return records.Title(
        i, f"t-{i}", f"Title {i}", "movie", "", 2000, maturity, 90, list(genres), [], frozenset(countries),
        popularity, added or i, {d: f"https://cdn/{d}/{i}.jpg" for d in records.DEVICES},
    )  # fmt: skip


def story(
    i: int, published: int, genres: tuple[str, ...] = ("Drama",), titles: tuple[int, ...] = ()
) -> records.Story:
    return records.Story(i, f"s-{i}", f"Story {i}", "", "[]", {}, list(titles), list(genres), published, 1)


def ids(table, key: str) -> list[int]:  # type: ignore[no-untyped-def]
    return json.loads(table.values[key])


def test_title_rows_are_filtered_per_country_and_maturity_and_ordered_like_marrow() -> None:
    table, _ = consumed(
        [
            title(1, 10, {"US", "DE"}),
            title(2, 30, {"US"}, maturity=16),
            title(3, 30, {"US", "DE"}, genres=("Comedy",)),  # ties title 2 on popularity: the id decides
            title(4, 20, {"DE"}, maturity=18, added=99),
        ]
    )
    assert ids(table, keys.title_row("trending", "US", 18)) == [2, 3, 1]
    assert ids(table, keys.title_row("trending", "US", 13)) == [3, 1]
    assert ids(table, keys.title_row("trending", "DE", 18)) == [3, 4, 1]
    assert ids(table, keys.title_row("top10", "DE", 16)) == [3, 1]  # 4 is rated 18
    assert ids(table, keys.title_row("new_releases", "DE", 18)) == [4, 3, 1]
    assert ids(table, keys.title_row("genre", "US", 18, "Comedy")) == [3]
    assert keys.title_row("trending", "FR", 18) not in table.values  # nothing is available there
    assert keys.title_row("trending", "US", 17) == keys.title_row("trending", "US", 16)  # levels


def test_lists_are_capped_at_the_candidates_of_the_longest_row() -> None:
    table, _ = consumed([title(i, 1000 - i, {"US"}) for i in range(1, keys.ROW_CAP + 20)])
    assert ids(table, keys.title_row("trending", "US", 18)) == list(range(1, keys.ROW_CAP + 1))


def test_story_rows_newest_first_by_genre_and_by_title() -> None:
    table, _ = consumed(
        [
            title(7, 1, {"US"}),
            story(1, 100, ("Drama",), (7,)),
            story(2, 300, ("Comedy",)),
            story(3, 300, ("Drama",), (7, 7)),
        ]
    )
    assert ids(table, keys.story_row()) == [2, 3, 1]
    assert ids(table, keys.story_row(genre="Drama")) == [3, 1]
    assert ids(table, keys.story_row(title=7)) == [3, 1]


def test_a_headline_edit_writes_its_record_and_no_list() -> None:
    table, consumer = consumed([title(1, 10, {"US"}), story(1, 100), story(2, 200)])
    written: list[set[str]] = []
    original = table.write

    def spy(upserts, deletes=()):  # type: ignore[no-untyped-def]
        written.append(set(upserts) | set(deletes))
        original(upserts, deletes)

    table.write = spy  # type: ignore[method-assign]
    consumed([replace(story(1, 100), headline="New headline")], table=table, consumer=consumer)
    assert written == [{"story/1", keys.APPLIED}]
    assert json.loads(table.values["story/1"])["headline"] == "New headline"


def test_deletes_remove_the_record_and_update_or_remove_its_lists() -> None:
    table, consumer = consumed([title(1, 10, {"US"}, genres=("Comedy",)), title(2, 5, {"US"})])
    consumed([], [("Title", 1)], table=table, consumer=consumer)
    assert "title/1" not in table.values
    assert ids(table, keys.title_row("trending", "US", 18)) == [2]
    assert keys.title_row("genre", "US", 18, "Comedy") not in table.values  # no Comedy left


def test_collections_are_kept_by_slug_and_deleted_by_id() -> None:
    table, consumer = consumed([records.Collection(5, "cosy-crime", "Cosy crime", [3, 1], 1)])
    assert json.loads(table.values["collection/cosy-crime"])["titles"] == [3, 1]
    consumed([], [("Collection", 5)], table=table, consumer=consumer)
    assert "collection/cosy-crime" not in table.values
