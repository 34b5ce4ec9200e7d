"""The editor over HTTP: sign-in, sessions and CSRF; list and search; save, conflict, inline errors;
preview at the save's offset; publish and unpublish; and the JSON twins."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from editor_site import CSRF, LOGIN, PASSWORD, Site, build
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x asks for its httpx fork (httpx2) and warns on import when it finds httpx instead
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return build(tmp_path)


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    with TestClient(site.app, follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, password: str = PASSWORD) -> Any:
    page = client.get("/sign-in")
    token = LOGIN.search(page.text)[1]  # type: ignore[index]
    return client.post(
        "/sign-in", data={"username": "ana", "password": password, "login_token": token, "next": "/stories"}
    )


@pytest.fixture
def signed_in(client: TestClient) -> TestClient:
    assert sign_in(client).status_code == 303
    return client


def story_form(client: TestClient, id: int) -> dict[str, str]:
    """The story page's form fields as a browser would submit them."""
    page = client.get(f"/stories/{id}")
    assert page.status_code == 200
    data = client.get(f"/stories/{id}.json").json()
    form = data["form"]
    fields = {
        "csrf": CSRF.search(page.text)[1],  # type: ignore[index]
        "revision": str(data["revision"]),
        **{k: form[k] for k in ("headline", "slug", "template", "summary", "hero", "genres")},
    }
    for i, b in enumerate(form["blocks"]):
        fields.update({f"block-{i}-{k}": v for k, v in b.items()})
    return fields


def test_anonymous_requests_are_refused(client: TestClient) -> None:
    page = client.get("/stories/1")
    assert page.status_code == 303 and page.headers["location"] == "/sign-in?next=%2Fstories%2F1"
    assert client.get("/stories.json").status_code == 401
    preview = client.get("/preview/stories/why-dark-works")
    assert preview.status_code == 303 and preview.headers["location"].startswith("/sign-in?next=%2Fpreview")
    assert client.get("/preview/stories/why-dark-works.json").status_code == 401
    for path in ("/stories", "/stories/1", "/stories/1/publish", "/stories/1/unpublish", "/sign-out"):
        refused = client.post(path, data={"headline": "x", "revision": "1"})
        assert refused.status_code == 401, path
    assert "sign in first" in client.post("/stories/1", data={}).text


def test_sign_in_with_a_wrong_password_is_refused(client: TestClient) -> None:
    refused = sign_in(client, "wrong password")
    assert refused.status_code == 401 and "wrong username or password" in refused.text
    assert "marrow_session" not in refused.cookies


def test_sign_in_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/sign-in")
    forged = client.post("/sign-in", data={"username": "ana", "password": PASSWORD, "login_token": "guess"})
    assert forged.status_code == 403


def test_sign_in_sets_a_protected_session_cookie(tmp_path: Path) -> None:
    site = build(tmp_path, secure_cookies=True)
    with TestClient(site.app, base_url="https://testserver", follow_redirects=False) as client:
        signed = sign_in(client)
    cookie = signed.headers["set-cookie"]
    assert signed.status_code == 303 and signed.headers["location"] == "/stories"
    assert "marrow_session=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()


def test_a_write_without_the_csrf_token_is_refused(signed_in: TestClient, site: Site) -> None:
    fields = story_form(signed_in, 1)
    fields["headline"] = "Forged"
    del fields["csrf"]
    assert signed_in.post("/stories/1", data=fields).status_code == 403
    fields["csrf"] = "not-the-token"
    assert signed_in.post("/stories/1", data=fields).status_code == 403
    assert site.cms.get("story", 1).revision == 1


def test_list_and_search(signed_in: TestClient, site: Site) -> None:
    page = signed_in.get("/stories")
    assert page.status_code == 200 and "Why Dark works" in page.text
    data = signed_in.get("/stories.json", params={"q": "dark"}).json()
    assert data["total"] == 1 and data["stories"][0]["status"] == "published"
    assert signed_in.get("/stories.json", params={"q": "nothing"}).json()["total"] == 0
    assert signed_in.get("/stories.json", params={"status": "draft"}).json()["total"] == 0
    assert signed_in.get("/stories.json", params={"status": "bogus"}).status_code == 400


def test_a_saved_change_is_in_the_preview_read_at_its_offset(signed_in: TestClient, site: Site) -> None:
    fields = story_form(signed_in, 1)
    fields["headline"] = "Why Dark still works"
    saved = signed_in.post("/stories/1", data=fields)
    assert saved.status_code == 303
    location = saved.headers["location"]
    offset = int(location.rsplit("offset=", 1)[1])
    assert location == f"/stories/1?offset={offset}"
    page = signed_in.get(location)
    assert f'src="/preview/stories/why-dark-works?offset={offset}"' in page.text
    preview = signed_in.get(f"/preview/stories/why-dark-works.json?offset={offset}").json()["story"]
    assert preview["headline"] == "Why Dark still works" and preview["revision"] == 2
    html = signed_in.get(f"/preview/stories/why-dark-works?offset={offset}").text  # the site's own page
    assert "<h1>Why Dark still works</h1>" in html and 'data-title="10"' in html
    assert 'href="/preview/titles/dark"' in html  # its links stay in the preview
    assert site.live.read()["Story"].get(1).headline == "Why Dark works"  # published: still revision 1


def test_a_broken_reference_is_shown_inline_and_the_preview_keeps_the_last_good_version(
    signed_in: TestClient, site: Site
) -> None:
    fields = story_form(signed_in, 1)
    fields.update({"headline": "Broken", "block-1-title": "999"})
    answer = signed_in.post("/stories/1", data=fields)
    assert answer.status_code == 422
    assert 'data-field="blocks[1].title">title 999 does not exist' in answer.text
    assert "Saved as revision 2, but not published to preview" in answer.text
    assert 'name="revision" value="2"' in answer.text  # the next save is based on what was saved
    preview = signed_in.get("/preview/stories/why-dark-works.json").json()["story"]
    assert preview["headline"] == "Why Dark works" and preview["revision"] == 1
    errors = signed_in.get("/stories/1.json").json()["form"]["errors"]  # still shown after a reload
    assert errors == {"blocks[1].title": ["title 999 does not exist"]}


def test_a_field_that_cannot_be_read_is_an_error_and_nothing_is_saved(
    signed_in: TestClient, site: Site
) -> None:
    fields = story_form(signed_in, 1)
    fields["block-1-title"] = "Dark"
    answer = signed_in.post("/stories/1", data=fields)
    assert answer.status_code == 422 and "an id is a whole number, not &#39;Dark&#39;" in answer.text
    assert site.cms.get("story", 1).revision == 1


def test_a_stale_save_is_a_conflict_naming_both_revisions(signed_in: TestClient, site: Site) -> None:
    first = story_form(signed_in, 1)
    second = dict(first)
    first["headline"] = "Mine"
    assert signed_in.post("/stories/1", data=first).status_code == 303
    second["headline"] = "Theirs"
    answer = signed_in.post("/stories/1", data=second)
    assert answer.status_code == 409
    assert "revision 2 now, but this save was based on revision 1" in answer.text
    assert site.cms.get("story", 1).doc.headline == "Mine"  # type: ignore[union-attr]


def test_adding_a_block_saves_nothing(signed_in: TestClient, site: Site) -> None:
    fields = story_form(signed_in, 1)
    answer = signed_in.post("/stories/1", data={**fields, "action": "add:video"})
    assert answer.status_code == 200 and 'name="block-2-kind" value="video"' in answer.text
    assert site.cms.get("story", 1).revision == 1


def test_create_a_story(signed_in: TestClient, site: Site) -> None:
    new = signed_in.get("/stories/new")
    fields = {
        "csrf": CSRF.search(new.text)[1],  # type: ignore[index]
        "revision": "",
        "headline": "Ozark, explained",
        "slug": "ozark-explained",
        "template": "article",
        "hero": "4",
        "block-0-kind": "text",
        "block-0-text": "All about {{title:11}}.",
    }
    created = signed_in.post("/stories", data=fields)
    assert created.status_code == 303 and created.headers["location"].startswith("/stories/2?offset=")
    offset = created.headers["location"].rsplit("offset=", 1)[1]
    story = signed_in.get(f"/preview/stories/{fields['slug']}.json?offset={offset}").json()["story"]
    assert story["headline"] == "Ozark, explained"


def test_publish_and_unpublish(signed_in: TestClient, site: Site) -> None:
    fields = story_form(signed_in, 1)
    fields["headline"] = "Published headline"
    signed_in.post("/stories/1", data=fields)
    stale = signed_in.post("/stories/1/publish", data={"csrf": fields["csrf"], "revision": "1"})
    assert stale.status_code == 409 and "revision 2, not 1" in stale.text
    published = signed_in.post("/stories/1/publish", data={"csrf": fields["csrf"], "revision": "2"})
    assert published.status_code == 303
    assert site.live.read()["Story"].get(1).headline == "Published headline"
    assert signed_in.post("/stories/1/unpublish", data={"csrf": fields["csrf"]}).status_code == 303
    assert site.live.read()["Story"].get(1) is None
    assert signed_in.get("/stories/1.json").json()["status"] == "draft"


def test_sign_out_ends_the_session(signed_in: TestClient, site: Site) -> None:
    csrf = story_form(signed_in, 1)["csrf"]
    assert signed_in.post("/sign-out", data={"csrf": csrf}).status_code == 303
    assert signed_in.get("/stories.json").status_code == 401
    assert [a.action for a in site.cms.audit(limit=3)][:2] == ["signed out", "signed in"]


def test_unknown_story_and_bad_offset(signed_in: TestClient) -> None:
    assert signed_in.get("/stories/77").status_code == 404
    assert signed_in.get("/preview/stories/why-dark-works?offset=x").status_code == 400
    assert signed_in.get("/preview/stories/why-dark-works.json?offset=999").status_code == 503
