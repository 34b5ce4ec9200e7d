"""The editor's layout pages over HTTP: list, edit sections (add, move, remove), save into the preview at
the save's offset, errors by section with the preview keeping the last good layout, publish."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from editor_site import CSRF, LOGIN, PASSWORD, Site, build
from starlette.exceptions import StarletteDeprecationWarning

from marrow.cms import PageLayout, SectionSpec

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

HOME = PageLayout(
    page="home",
    device="web",
    sections=[  # (three titles in the seed: a title each, so that dedup leaves every row one)
        SectionSpec(kind="trending", label="Trending now", limit=1),
        SectionSpec(kind="new", label="Fresh", limit=1),
    ],
)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    site = build(tmp_path)
    site.cms.save("layout", None, HOME, base=None, editor="ana")
    site.cms.publish("layout", 1, editor="ana")
    site.ingestion.ingest_pending().raise_for_errors()
    return site


@pytest.fixture
def editor(site: Site) -> Iterator[TestClient]:
    with TestClient(site.app, follow_redirects=False) as client:
        token = LOGIN.search(client.get("/sign-in").text)[1]  # type: ignore[index]
        signed = {"username": "ana", "password": PASSWORD, "login_token": token, "next": "/layouts"}
        assert client.post("/sign-in", data=signed).status_code == 303
        yield client


def layout_form(client: TestClient, id: int = 1) -> dict[str, str]:
    """The layout page's form fields as a browser would submit them."""
    page = client.get(f"/layouts/{id}")
    assert page.status_code == 200
    data = client.get(f"/layouts/{id}.json").json()
    fields = {
        "csrf": CSRF.search(page.text)[1],  # type: ignore[index]
        "revision": str(data["revision"]),
        "page": data["form"]["page"],
        "device": data["form"]["device"],
    }
    for i, s in enumerate(data["form"]["sections"]):
        fields.update({f"section-{i}-{k}": v for k, v in s.items()})
    return fields


def headings(client: TestClient, offset: int | None = None) -> list[Any]:
    query = f"?device=web&offset={offset}" if offset is not None else "?device=web"
    return [s["title"] for s in client.get(f"/preview/index.json{query}").json()["page"]["sections"]]


def test_layouts_are_listed_for_editors_only(site: Site, editor: TestClient) -> None:
    listed = editor.get("/layouts.json").json()["layouts"]
    assert [(x["label"], x["status"], x["url"]) for x in listed] == [
        ("home · web", "published", "/layouts/1")
    ]
    assert "home · web" in editor.get("/layouts").text
    with TestClient(site.app, follow_redirects=False) as anonymous:
        assert anonymous.get("/layouts.json").status_code == 401
        assert anonymous.post("/layouts/1", data=layout_form(editor)).status_code == 401


def test_a_saved_layout_is_the_preview_home_page_at_its_offset(site: Site, editor: TestClient) -> None:
    assert headings(editor) == ["Trending now", "Fresh"]
    fields = layout_form(editor)
    fields.update({"section-1-move": "up", "section-0-label": "Hot right now", "action": "add"})
    added = editor.post("/layouts/1", data=fields)  # adding a section saves nothing yet
    assert added.status_code == 200 and site.cms.get("layout", 1).revision == 1
    fields = {k: v for k, v in fields.items() if k != "section-1-move"} | {"action": "save"}
    fields.update({"section-1-move": "up", "section-2-kind": "top10", "section-2-limit": "10"})
    saved = editor.post("/layouts/1", data=fields)
    assert saved.status_code == 303
    offset = int(saved.headers["location"].rsplit("offset=", 1)[1])
    page = editor.get(saved.headers["location"])
    assert f'src="/preview/?device=web&amp;offset={offset}"' in page.text
    assert headings(editor, offset)[:2] == ["Fresh", "Hot right now"]  # moved up, renamed
    assert headings(editor, offset)[2].startswith("Top 10 in")  # the generator names it
    assert site.live.read()["Layout"].get(1).revision == 1  # visitors still see the published one


def test_an_incomplete_section_is_shown_by_its_row_and_the_preview_keeps_the_last_good_layout(
    site: Site, editor: TestClient
) -> None:
    fields = layout_form(editor) | {"section-1-kind": "collection", "action": "save"}
    answer = editor.post("/layouts/1", data=fields)
    assert answer.status_code == 422
    assert 'data-field="sections[1].collection"' in answer.text and "needs its collection" in answer.text
    assert site.cms.get("layout", 1).revision == 2  # saved as a draft, not laid out
    assert headings(editor) == ["Trending now", "Fresh"]


def test_a_malformed_number_saves_nothing(site: Site, editor: TestClient) -> None:
    fields = layout_form(editor) | {"section-0-limit": "ten", "action": "save"}
    answer = editor.post("/layouts/1", data=fields)
    assert answer.status_code == 422 and "a whole number, not &#39;ten&#39;" in answer.text
    assert site.cms.get("layout", 1).revision == 1


def test_publish_puts_the_layout_on_the_site(site: Site, editor: TestClient) -> None:
    fields = layout_form(editor) | {"section-0-remove": "1", "action": "save"}
    assert editor.post("/layouts/1", data=fields).status_code == 303
    form = layout_form(editor)
    published = editor.post("/layouts/1/publish", data={"csrf": form["csrf"], "revision": form["revision"]})
    assert published.status_code == 303
    layout = site.live.read()["Layout"].get(1)
    assert layout.revision == 2 and '"Fresh"' in layout.sections and "Trending now" not in layout.sections
