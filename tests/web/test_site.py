"""The visitor site: pages and their JSON twins, visitors, caching headers, fragments, engagement, metrics."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "pages"))
from pages_dataset import state, title

from marrow.pages import GENERATORS, InMemoryEngagement, Layouts, PageBuilder
from marrow.pages.views import StaticViews
from marrow.web.site import Profile, SiteSettings, site_app

STATE = state()
PROFILES = {7: Profile("Ana", "DE", 16), 8: Profile("Kid", "US", 7)}


@pytest.fixture
def client() -> TestClient:
    builder = PageBuilder(Layouts.load(generators=GENERATORS), engagement=InMemoryEngagement())
    return TestClient(site_app(StaticViews(STATE), builder, SiteSettings(profiles=PROFILES)))


def test_home_and_its_json_twin_show_the_same_rows(client: TestClient) -> None:
    html = client.get("/?device=tv")
    data = client.get("/index.json?device=tv").json()
    assert html.status_code == 200 and data["page"]["device"] == "tv"
    for section in data["page"]["sections"]:
        assert section["title"] in html.text
        for card in section["items"][:3]:
            assert f'data-id="{card["id"]}"' in html.text
    assert data["page"]["cursor"] and "More rows" in html.text


def test_fragments_continue_the_page_without_repeating_titles(client: TestClient) -> None:
    page = client.get("/index.json?device=mobile").json()["page"]
    seen = [c["id"] for s in page["sections"] for c in s["items"]]
    while page.get("cursor"):
        page = client.get("/fragment.json", params={"cursor": page["cursor"], "device": "mobile"}).json()[
            "page"
        ]
        assert page["consistent"]
        seen += [c["id"] for s in page["sections"] if s["kind"] == "titles" for c in s["items"]]
    assert len(seen) == len(set(seen))


def test_a_profile_brings_its_country_and_maturity(client: TestClient) -> None:
    data = client.get("/index.json?profile=8").json()
    assert data["visitor"] == {"country": "US", "device": "web", "maturity": 7, "profile": 8}
    ids = [c["id"] for s in data["page"]["sections"] if s["kind"] == "titles" for c in s["items"]]
    assert ids and all(title(i).maturity <= 7 for i in ids)


def test_html_pages_remember_the_visitor_in_cookies(client: TestClient) -> None:
    client.get("/?device=tv&country=FR")
    data = client.get("/index.json").json()
    assert data["visitor"]["device"] == "tv" and data["visitor"]["country"] == "FR"


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/index.json?device=watch", 400, "device must be one of"),
        ("/index.json?country=Germany", 400, "two-letter ISO 3166 code"),
        ("/index.json?profile=99", 404, "no profile 99"),
        ("/index.json?profile=x", 400, "profile must be a profile id"),
        ("/titles/nope.json", 404, "no title 'nope'"),
        ("/stories/nope.json", 404, "no story 'nope'"),
        ("/fragment.json", 400, "give cursor"),
        ("/fragment.json?cursor=abc", 400, "not one this site issued"),
        ("/search.json?q=" + "x" * 300, 400, "at most 200"),
    ],
)
def test_bad_input_is_a_4xx_that_says_what_was_wrong(
    client: TestClient, url: str, status: int, message: str
) -> None:
    response = client.get(url)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_signed_out_pages_are_publicly_cacheable_and_revalidate(client: TestClient) -> None:
    first = client.get("/titles/title-12.json")
    assert first.headers["cache-control"] == "public, max-age=10"
    again = client.get("/titles/title-12.json", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/index.json?profile=7").headers["cache-control"] == "private, no-cache"


def test_title_story_genre_and_search_pages(client: TestClient) -> None:
    t = client.get("/titles/title-12.json").json()
    assert t["title"]["name"] == title(12).name and t["page"]["sections"]
    assert "More like this" in client.get("/titles/title-12").text
    s = client.get("/stories/story-3.json").json()
    assert (
        s["story"]["headline"] == "Story 3: behind the scenes" and s["story"]["blocks"][0]["kind"] == "text"
    )
    assert "Body of story 3" in client.get("/stories/story-3").text
    g = client.get("/genre/Comedy.json").json()
    assert g["page"]["layout"] == "gallery" and all(
        "Comedy" in title(c["id"]).genres for c in g["page"]["sections"][0]["items"]
    )
    found = client.get("/search.json?q=12").json()["page"]["sections"]
    assert found[0]["items"][0]["name"] == title(12).name
    assert client.get("/complete.json?q=story 2").json()["suggestions"][0] == "Story 2: behind the scenes"


def test_a_play_shows_up_in_continue_watching(client: TestClient) -> None:
    response = client.post(
        "/engage?profile=7", data={"title": "20", "action": "play", "progress": "0.3"}, follow_redirects=False
    )
    assert response.status_code == 303
    sections = client.get("/index.json?profile=7").json()["page"]["sections"]
    assert sections[0]["key"] == "continue_watching" and sections[0]["items"][0]["id"] == 20
    bad = client.post("/engage?profile=7", json={"title": 20, "action": "dance"})
    assert bad.status_code == 400 and "dance" in bad.json()["error"]
    anonymous = client.post("/engage", json={"title": 20, "action": "play"})
    assert anonymous.status_code == 400 and "choose a profile" in anonymous.json()["error"]


def test_metrics_count_builds_and_fragments(client: TestClient) -> None:
    client.get("/index.json")
    text = client.get("/metrics").text
    assert 'marrow_page_build_seconds_count{device="web",page="home"} 1.0' in text
    assert 'marrow_page_fragments_total{first="true",page="home"} 1.0' in text
