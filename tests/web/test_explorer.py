"""The explorer: every page and its JSON twin, the queries, pagination, references, history and diff,
and a clear 4xx for every kind of bad input."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from explorer_dataset import SCHEMA, Catalogue, build
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import Mount
from typer.testing import CliRunner

with warnings.catch_warnings():
    # Starlette 1.x asks for its httpx fork (httpx2) and warns on import when it finds httpx instead,
    # which the project depends on; the client works the same with either.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from marrow.store import WriteState
from marrow.store.consumer import Consumer
from marrow.store.memory import InMemoryAnnouncer, InMemoryBlobStore
from marrow.web.explorer import PER_PAGE, explorer_app


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return build()


@pytest.fixture(scope="module")
def client(catalogue: Catalogue) -> Iterator[TestClient]:
    with TestClient(explorer_app(catalogue.consumer, catalogue.history)) as c:
        yield c


def get_json(client: TestClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def get_html(client: TestClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def twin(url: str) -> str:
    """The JSON twin of a page's URL: ``.json`` after the path."""
    path, _, query = url.partition("?")
    return f"{path}.json" + (f"?{query}" if query else "")


# --- overview ---------------------------------------------------------------------------------------


def test_overview_shows_version_tag_and_per_type_figures(client: TestClient, catalogue: Catalogue) -> None:
    state = catalogue.consumer.state
    data = get_json(client, "/.json")
    assert data["version"] == 3 and data["tag"] == state.tag
    types = {t["name"]: t for t in data["types"]}
    assert set(types) == {"Person", "Award", "Title", "Availability"}
    title = types["Title"]
    assert title["records"] == len(state["Title"]) == 120
    assert title["data_bytes"] == state.memory()["Title"]["data_bytes"] > 0
    assert title["bytes_per_record"] == round(title["data_bytes"] / 120, 1)
    assert title["primary_key"] == ["id"]
    assert types["Availability"]["primary_key"] == ["title", "country"]
    assert types["Award"]["primary_key"] == []
    assert {
        "name": "cast",
        "type": "list<Person>",
        "kind": "list",
        "target_url": "/types/Person.json",
    } in title["fields"]
    assert data["metrics"]["refreshes"] == 3 and data["metrics"]["version"] == 3

    html = get_html(client, "/")
    assert "Version 3" in html and state.tag in html
    assert '<a href="/types/Title">Title</a>' in html
    assert f"{title['data_bytes']:,}" in html
    assert "list&lt;Person&gt;" in html  # field types are shown, escaped
    assert 'href="/.json"' in html  # the page links its twin


def test_index_bytes_count_the_indexes_queries_built(catalogue: Catalogue) -> None:
    client = TestClient(explorer_app(build().consumer))  # a fresh state: no index built yet
    before = {t["name"]: t["index_bytes"] for t in get_json(client, "/.json")["types"]}
    assert before["Title"] == 0
    get_json(client, "/types/Title/find.json?field=genres&value=noir")
    after = {t["name"]: t["index_bytes"] for t in get_json(client, "/.json")["types"]}
    assert after["Title"] > 0


# --- browsing a type ------------------------------------------------------------------------------


def test_type_page_pages_through_records_by_ordinal(client: TestClient, catalogue: Catalogue) -> None:
    ordinals = catalogue.consumer.state["Title"].ordinals().tolist()
    first = get_json(client, "/types/Title.json")
    assert (first["total"], first["pages"], first["per_page"]) == (120, 3, PER_PAGE)
    assert [r["ordinal"] for r in first["records"]] == ordinals[:PER_PAGE]
    assert first["prev_url"] is None and first["next_url"] == "/types/Title.json?page=2"
    second = get_json(client, first["next_url"])
    assert [r["ordinal"] for r in second["records"]] == ordinals[PER_PAGE : 2 * PER_PAGE]
    last = get_json(client, "/types/Title.json?page=3")
    assert len(last["records"]) == 120 - 2 * PER_PAGE and last["next_url"] is None
    assert last["prev_url"] == "/types/Title.json?page=2"

    html = get_html(client, "/types/Title?page=2")
    assert "page 2 of 3" in html
    assert 'href="/types/Title?page=1"' in html and 'href="/types/Title?page=3"' in html
    for record in second["records"]:
        assert f'href="{record["url"].replace(".json", "")}"'.replace("&", "&amp;") in html


def test_type_page_shows_field_values_and_reference_links(client: TestClient, catalogue: Catalogue) -> None:
    state = catalogue.consumer.state
    dark = state["Title"].get(1)
    assert dark is not None
    data = get_json(client, "/types/Title.json")
    record = next(r for r in data["records"] if r["ordinal"] == dark.ordinal)
    fields = record["fields"]
    assert fields["title"] == "Dark" and fields["year"] == 2017 and fields["kids"] is False
    director = dark.director
    assert fields["director"] == {
        "type": "Person",
        "ordinal": director.ordinal,
        "key": director.id,
        "label": f"Person {director.id} · {director.name}",
        "url": f"/types/Person/{director.ordinal}.json?version=3",
    }
    assert [c["key"] for c in fields["cast"]] == [p.id for p in dark.cast]
    assert fields["genres"] == sorted(dark.genres)
    assert fields["extra"] == [["rank", 1], ["seasons", 1]]  # a map: pairs, in key order

    html = get_html(client, "/types/Title")
    link = f'<a class="ref" href="/types/Person/{director.ordinal}?version=3">'
    assert f"{link}Person {director.id} · {director.name}</a>" in html


def test_values_json_cannot_hold_are_made_plain(client: TestClient, catalogue: Catalogue) -> None:
    titles = catalogue.consumer.state["Title"]
    nan_title, inf_title, poster = (titles.get(i) for i in (5, 6, 3))
    assert nan_title is not None and inf_title is not None and poster is not None
    assert math.isnan(nan_title.score)
    fields = {
        o: get_json(client, f"/types/Title/{o}.json")["record"]["fields"]
        for o in (nan_title.ordinal, inf_title.ordinal, poster.ordinal)
    }
    assert fields[nan_title.ordinal]["score"] == "nan"
    assert fields[inf_title.ordinal]["score"] == "inf"
    assert fields[poster.ordinal]["poster"] == "03ff"  # bytes as hex
    assert fields[nan_title.ordinal]["poster"] is None


def test_markup_in_values_is_escaped(client: TestClient, catalogue: Catalogue) -> None:
    script = catalogue.consumer.state["Title"].get(7)
    assert script is not None
    for url in (
        "/types/Title",
        f"/types/Title/{script.ordinal}",
        "/types/Title/complete?field=title&prefix=%3Cscr",
    ):
        html = get_html(client, url)
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in html
    for url in ("/types/%3Cscript%3E", "/types/Title/find?field=title&value=%3Cmarquee%3E"):  # echoed input
        html = get_html(client, url, 404 if "find" not in url else 200)
        assert "<script>" not in html and "<marquee>" not in html
        assert "&lt;script&gt;" in html or "&lt;marquee&gt;" in html


# --- records -----------------------------------------------------------------------------------------


def test_record_page_by_ordinal_follows_references(client: TestClient, catalogue: Catalogue) -> None:
    dark = catalogue.consumer.state["Title"].get(1)
    assert dark is not None
    data = get_json(client, f"/types/Title/{dark.ordinal}.json")
    assert data["record"]["label"] == "Title 1 · Dark" and data["record"]["key"] == 1
    assert data["record"]["fields"]["title"] == "Dark"
    assert data["notice"] is None
    director = get_json(client, data["record"]["fields"]["director"]["url"])
    assert director["record"]["fields"]["name"] == dark.director.name
    assert director["notice"] is None  # the link was made at the version the explorer holds

    html = get_html(client, f"/types/Title/{dark.ordinal}")
    assert "<h1>Title 1 · Dark</h1>" in html
    assert f'href="/types/Person/{dark.director.ordinal}?version=3"' in html


def test_record_page_links_to_the_records_that_refer_to_it(client: TestClient, catalogue: Catalogue) -> None:
    person = catalogue.consumer.state["Person"].get(3)
    assert person is not None
    data = get_json(client, f"/types/Person/{person.ordinal}.json")
    urls = {(r["type"], r["field"]): r["url"] for r in data["referenced_from"]}
    assert set(urls) == {("Title", "director"), ("Title", "cast")}
    directed = get_json(client, urls[("Title", "director")])
    expected = [t.ordinal for t in catalogue.consumer.state["Title"] if t.director.id == 3]
    assert [r["ordinal"] for r in directed["records"]] == expected and expected


def test_record_page_by_primary_key(client: TestClient, catalogue: Catalogue) -> None:
    data = get_json(client, "/types/Title/key.json?id=500")
    assert data["record"]["fields"]["title"] == "Zebra Crossing"
    both = get_json(client, "/types/Availability/key.json?title=2&country=US")
    assert both["record"]["fields"] == {"title": 2, "country": "US", "available": True}
    assert both["record"]["key"] == [2, "US"]
    html = get_html(client, "/types/Title/key?id=500")
    assert "<h1>Title 500 · Zebra Crossing</h1>" in html


def test_a_link_from_an_older_version_says_ordinals_may_have_moved(client: TestClient) -> None:
    data = get_json(client, "/types/Person/0.json?version=2")
    assert "version 2" in data["notice"] and "version 3" in data["notice"]
    assert "Ordinals are per version" in get_html(client, "/types/Person/0?version=2")


# --- queries ----------------------------------------------------------------------------------------


def test_hash_index_query_typed_by_field(client: TestClient, catalogue: Catalogue) -> None:
    titles = catalogue.consumer.state["Title"]
    noir = get_json(client, "/types/Title/find.json?field=genres&value=noir")
    expected = sorted(t.ordinal for t in titles if "noir" in t.genres)
    assert noir["query"] == {"kind": "find", "field": "genres", "value": "noir", "count": len(expected)}
    assert [r["ordinal"] for r in noir["records"]] == expected[:PER_PAGE]
    assert noir["total"] == len(expected) > PER_PAGE  # paginated like the type page
    assert noir["next_url"] == "/types/Title/find.json?field=genres&value=noir&page=2"
    page_2 = get_json(client, noir["next_url"])
    assert [r["ordinal"] for r in page_2["records"]] == expected[PER_PAGE : 2 * PER_PAGE]

    year = get_json(client, "/types/Title/find.json?field=year&value=%202017%20")  # ints are parsed
    assert sorted(r["fields"]["id"] for r in year["records"]) == sorted(
        t.id for t in titles if t.year == 2017
    )
    kids = get_json(client, "/types/Title/find.json?field=kids&value=TRUE")
    assert kids["total"] == sum(1 for t in titles if t.kids)
    poster = get_json(client, "/types/Title/find.json?field=poster&value=06ff")
    assert [r["fields"]["id"] for r in poster["records"]] == [6]
    director = titles.get(12).director  # type: ignore[union-attr]
    by_ref = get_json(client, f"/types/Title/find.json?field=director&value={director.ordinal}")
    assert {r["fields"]["id"] for r in by_ref["records"]} == {
        t.id for t in titles if t.director.id == director.id
    }

    html = get_html(client, "/types/Title/find?field=genres&value=noir")
    assert f"{len(expected)} records where" in html
    assert '<option value="genres" selected>' in html and 'value="noir"' in html


def test_prefix_query_completes_words(client: TestClient) -> None:
    data = get_json(client, "/types/Title/complete.json?field=title&prefix=DA")
    assert [r["fields"]["title"] for r in data["records"]] == ["Dark", "The Dark Knight"]
    assert data["query"] == {"kind": "complete", "field": "title", "prefix": "DA", "limit": 20, "count": 2}
    limited = get_json(client, "/types/Title/complete.json?field=title&prefix=e&limit=3")
    assert len(limited["records"]) == 3
    html = get_html(client, "/types/Title/complete?field=title&prefix=zeb")
    assert "Zebra Crossing" in html and "1 record with a word of" in html


def test_type_page_offers_the_query_forms_its_fields_allow(client: TestClient) -> None:
    forms = get_json(client, "/types/Title.json")["forms"]
    assert forms["key"] == {"url": "/types/Title/key.json", "fields": ["id"]}
    assert "extra" not in forms["find"]["fields"] and "cast" in forms["find"]["fields"]  # no maps
    assert forms["complete"]["fields"] == ["title"]
    html = get_html(client, "/types/Title")
    assert 'action="/types/Title/key"' in html and 'action="/types/Title/find"' in html
    assert 'action="/types/Title/complete"' in html
    award = get_html(client, "/types/Award")
    assert 'action="/types/Award/key"' not in award  # no primary key, no form


# --- history and diff -----------------------------------------------------------------------------


def test_history_lists_each_refresh_newest_first(client: TestClient) -> None:
    data = get_json(client, "/history.json")
    assert [(e["before"], e["after"]) for e in data["entries"]] == [(2, 3), (1, 2), (None, 1)]
    v2 = data["entries"][1]["types"]["Title"]
    assert (v2["added_keys"], v2["removed_keys"]) == ([500], [2])
    assert 1 in v2["changed_keys"]
    assert v2["added_urls"] == ["/types/Title/key.json?id=500"]
    assert data["entries"][0]["types"]["Person"]["changed_keys"] == [3]
    assert data["entries"][1]["url"] == "/diff.json?from=1&to=2"
    assert data["entries"][2]["url"] is None  # the first load has nothing to compare with
    availability = data["entries"][2]["types"]["Availability"]
    assert availability["added_urls"][0] == "/types/Availability/key.json?title=1&country=FR"

    html = get_html(client, "/history")
    assert "Version 1 → 2" in html and "Version 1 loaded" in html
    assert '<a href="/types/Title/key?id=500"><code>500</code></a>' in html
    assert '<a class="small" href="/diff?from=1&amp;to=2">diff</a>' in html


def test_diff_between_any_two_versions(client: TestClient) -> None:
    data = get_json(client, "/diff.json?from=1&to=3")  # version 1 is loaded from the blob store
    title = data["diff"]["types"]["Title"]
    assert (title["added_keys"], title["removed_keys"]) == ([500], [2])
    assert data["diff"]["types"]["Person"]["changed_keys"] == [3]
    assert (data["before"], data["after"], data["versions"]) == (1, 3, [1, 2, 3])
    back = get_json(client, "/diff.json?from=3&to=1")
    assert back["diff"]["types"]["Title"]["added_keys"] == [2]
    html = get_html(client, "/diff?from=1&to=3")
    assert "Version 1 → 3" in html and 'value="1"' in html
    assert "Compare" in get_html(client, "/diff")  # no versions given: the form
    assert get_json(client, "/diff.json")["diff"] is None


def test_diff_of_consecutive_versions_comes_from_the_history(catalogue: Catalogue) -> None:
    state = catalogue.consumer.state  # no blob store: only what the history holds
    client = TestClient(explorer_app(state, catalogue.history))
    assert get_json(client, "/diff.json?from=2&to=3")["diff"]["types"]["Person"]["changed_keys"] == [3]
    error = get_json(client, "/diff.json?from=1&to=3", 404)
    assert "version 1 is not in memory" in error["error"]


# --- other sources --------------------------------------------------------------------------------


def test_a_plain_read_state_is_explored_without_history(catalogue: Catalogue) -> None:
    client = TestClient(explorer_app(catalogue.consumer.state))
    data = get_json(client, "/.json")
    assert data["version"] == 3 and data["metrics"] is None
    assert "History" not in get_html(client, "/")
    error = get_json(client, "/history.json", 404)
    assert "keeps no history" in error["error"]


def test_a_consumer_with_nothing_loaded_answers_503() -> None:
    consumer = Consumer(InMemoryBlobStore(), InMemoryAnnouncer())
    client = TestClient(explorer_app(consumer))
    error = get_json(client, "/.json", 503)
    assert "nothing loaded yet" in error["error"]
    assert "nothing loaded yet" in get_html(client, "/types/Title", 503)


def test_links_stay_under_the_mount_path(catalogue: Catalogue) -> None:
    outer = Starlette(routes=[Mount("/explorer", explorer_app(catalogue.consumer, catalogue.history))])
    client = TestClient(outer)
    data = get_json(client, "/explorer/types/Title.json")
    assert data["next_url"] == "/explorer/types/Title.json?page=2"
    assert data["records"][0]["url"].startswith("/explorer/types/Title/")
    html = get_html(client, "/explorer/")
    assert 'href="/explorer/static/explorer.css"' in html and 'href="/explorer/types/Title"' in html
    assert client.get("/explorer/static/explorer.css").status_code == 200


# --- bad input --------------------------------------------------------------------------------------

BAD_INPUT = [
    ("/types/Nope", 404, "no type 'Nope'"),
    ("/types/Title?page=4", 404, "there is no page 4: 120 records make 3 page(s) of 50"),
    ("/types/Title?page=0", 400, "page must be between 1"),
    ("/types/Title?page=two", 400, "page must be an integer, not 'two'"),
    ("/types/Title/99999", 404, "Title has no record at ordinal 99999"),
    ("/types/Title/-1", 404, "Title has no record at ordinal -1"),
    ("/types/Title/first", 400, "a record's ordinal is an integer, not 'first'"),
    ("/types/Nope/1", 404, "no type 'Nope'"),
    ("/types/Title/key?id=abc", 400, "Title.id is a long; 'abc' is not an integer"),
    ("/types/Title/key?id=2", 404, "no Title with id = 2 in version 3"),
    ("/types/Title/key", 400, "give the primary key of Title: id missing"),
    ("/types/Availability/key?title=1", 400, "country missing"),
    ("/types/Award/key?name=Oscar", 400, "type Award has no primary key"),
    ("/types/Title/find?field=nope&value=1", 404, "type Title has no field 'nope'"),
    ("/types/Title/find?field=year&value=soon", 400, "Title.year is an int; 'soon' is not an integer"),
    ("/types/Title/find?field=year&value=99999999999", 400, "99999999999 is outside"),
    ("/types/Title/find?field=kids&value=maybe", 400, "give true or false, not 'maybe'"),
    ("/types/Title/find?field=score&value=high", 400, "Title.score is a double; 'high' is not a number"),
    ("/types/Title/find?field=poster&value=zz", 400, "give them as hex"),
    ("/types/Title/find?field=director&value=x", 400, "a reference to Person, given as its ordinal"),
    ("/types/Title/find?field=extra&value=1", 400, "Title.extra is a map"),
    ("/types/Title/find?value=1", 400, "give field"),
    ("/types/Title/find?field=year", 400, "give value"),
    ("/types/Title/complete?field=year&prefix=19", 400, "a prefix index needs a string field"),
    ("/types/Title/complete?field=title", 400, "give prefix"),
    ("/types/Title/complete?field=title&prefix=%20", 400, "give prefix"),
    ("/types/Title/complete?field=title&prefix=a&limit=0", 400, "limit must be between 1 and 500"),
    ("/diff?from=1", 400, "give both versions to compare"),
    ("/diff?from=one&to=2", 400, "from must be an integer, not 'one'"),
    ("/diff?from=1&to=99", 404, "version 99 cannot be loaded"),
    ("/nowhere", 404, "no page at /nowhere"),
]


@pytest.mark.parametrize(("url", "status", "message"), BAD_INPUT)
def test_bad_input_is_a_4xx_that_says_what_was_wrong(
    client: TestClient, url: str, status: int, message: str
) -> None:
    error = get_json(client, twin(url), status)
    assert error["status"] == status and message in error["error"], error
    html = get_html(client, url, status)
    assert f"<h1>{status}</h1>" in html
    assert message.replace("'", "&#39;") in html


def test_a_wrong_method_is_a_405_page(client: TestClient) -> None:
    assert client.post("/types/Title.json").json()["status"] == 405


# --- the command --------------------------------------------------------------------------------------


def test_marrow_explore_serves_a_filesystem_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from marrow.cli import app
    from marrow.store.filesystem import FilesystemAnnouncer, FilesystemBlobStore
    from marrow.store.producer import Producer

    producer = Producer(SCHEMA, FilesystemBlobStore(tmp_path), FilesystemAnnouncer(tmp_path))

    def populate(write: WriteState) -> None:
        write.add({"id": 1, "name": "Ada"}, "Person")

    producer.run_cycle(populate)
    served: dict[str, Any] = {}

    def run(app: Any, host: str, port: int, **_: Any) -> None:  # serve one request instead of forever
        served.update(host=host, port=port, overview=TestClient(app).get("/.json").json())

    monkeypatch.setattr(uvicorn, "run", run)
    result = CliRunner().invoke(app, ["explore", str(tmp_path), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/" in result.output
    assert served["port"] == 8123 and served["overview"]["version"] == 1
    assert [t["records"] for t in served["overview"]["types"] if t["name"] == "Person"] == [1]


def test_marrow_explore_refuses_a_missing_directory(tmp_path: Path) -> None:
    from marrow.cli import app

    result = CliRunner().invoke(app, ["explore", str(tmp_path / "absent")])
    assert result.exit_code == 1
    assert "is not a directory" in " ".join(result.output.split())  # rich wraps at the terminal width
