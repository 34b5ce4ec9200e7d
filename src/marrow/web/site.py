"""The visitor site: home, title, story, genre and search pages, each with a JSON twin.

    /                      home            /index.json
    /titles/{slug}         a title         /titles/{slug}.json
    /stories/{slug}        a story         /stories/{slug}.json
    /genre/{genre}         a genre         /genre/{genre}.json
    /search?q=…            search          /search.json?q=…
    /fragment?cursor=…     the next rows   /fragment.json?cursor=…   (HTML: rows only, appended by JS)
    /complete.json?q=…     autocomplete suggestions
    POST /engage           a play or an add to the list (form or JSON: title, action, progress)
    /metrics               Prometheus: build latency per page type, fallbacks, fragments

Who the page is for comes from the query (``?device=tv&country=DE&profile=7``), else from cookies the
HTML pages set, else from the site's defaults; a profile brings its maturity setting and country.
Pages are built by :class:`~marrow.pages.PageBuilder` on one store version per page (fragments
included). Responses carry an ETag and Cache-Control: public and short for signed-out visitors,
private for a profile; a matching If-None-Match gets 304. Bad input is a 4xx that says what was wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from marrow.errors import MarrowError, ReadTimeoutError, RequestError
from marrow.pages import Engagement, Fragment, PageBuilder, Visitor, catalogue, complete
from marrow.pages.search import MAX_QUERY
from marrow.pages.views import Views
from marrow.records import DEVICES

__all__ = ["Profile", "SiteSettings", "site_app"]

_HERE = Path(__file__).parent
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Profile:
    name: str
    country: str
    maturity: int = 18


@dataclass(frozen=True)
class SiteSettings:
    profiles: Mapping[int, Profile] = field(default_factory=dict)
    country: str = "US"  # for a visitor who says nothing
    device: str = "web"
    maturity: int = 13  # what a signed-out visitor may see
    public_max_age: int = 10  # seconds a shared cache may keep a signed-out page; 0: revalidate (preview)


class Problem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.build = Histogram(
            "marrow_page_build_seconds",
            "Time to build one fragment, by page type and device",
            ["page", "device"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3),
        )
        self.fallbacks = Counter(
            "marrow_page_fallbacks",
            "Sections served by a fallback",
            ["page", "section", "served"],
            registry=self.registry,
        )
        self.fragments = Counter(
            "marrow_page_fragments",
            "Fragments served, by page type and position",
            ["page", "first"],
            registry=self.registry,
        )

    def observe(self, page: str, fragment: Fragment, first: bool) -> None:
        self.build.labels(page, fragment.device).observe(fragment.build_ms / 1000)
        self.fragments.labels(page, str(first).lower()).inc()
        for f in fragment.fallbacks:
            self.fallbacks.labels(page, f.section, f.served).inc()


class Site:
    def __init__(self, views: Views, builder: PageBuilder, settings: SiteSettings):
        self.views, self.builder, self.settings = views, builder, settings
        self.metrics = _Metrics()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates" / "site"), autoescape=True
        )

    # --- who and what ---------------------------------------------------------------------------

    def visitor(self, request: Request) -> Visitor:
        def param(name: str) -> str | None:
            return request.query_params.get(name) or request.cookies.get(f"marrow_{name}") or None

        s = self.settings
        profile_id, profile = None, None
        raw = param("profile")
        if raw not in (None, "", "none"):
            try:
                profile_id = int(raw)
            except ValueError:
                raise Problem(400, f"profile must be a profile id, not {raw!r}") from None
            profile = s.profiles.get(profile_id)
            if profile is None:
                raise Problem(404, f"no profile {profile_id}; profiles: {sorted(s.profiles)}")
        device = param("device") or s.device
        if device not in DEVICES:
            raise Problem(400, f"device must be one of {list(DEVICES)}, not {device!r}")
        country = (param("country") or (profile.country if profile else s.country)).upper()
        if len(country) != 2 or not country.isalpha():
            raise Problem(400, f"country must be a two-letter ISO 3166 code, not {country!r}")
        maturity = profile.maturity if profile else s.maturity
        return Visitor(country, device, maturity, profile_id)

    def page(self, request: Request, page: str, subject: Any = None, query: str | None = None) -> Response:
        visitor = self.visitor(request)
        view = self.views.current(_offset(request))
        fragment = self.builder.build(view, page, visitor, subject, query)
        self.metrics.observe(page, fragment, True)
        data: dict[str, Any] = {"visitor": visitor, "page": fragment}
        if page == "title":
            data["title"] = _title(view, subject, visitor.device)
        elif page == "story":
            data["story"] = _story(view, subject, visitor.device)
        elif page == "search":
            data["query"] = query
        return self.respond(request, f"{page}.html", data, visitor)

    def fragment(self, request: Request) -> Response:
        text = request.query_params.get("cursor")
        if not text:
            raise Problem(400, "give cursor: the cursor of the fragment before")
        cursor = self.builder.codec.decode(text)
        visitor = self.visitor(request)
        view = self.views.at(cursor.tag, cursor.offset) or self.views.current()
        fragment = self.builder.build(view, cursor.page, visitor, cursor=cursor)
        self.metrics.observe(cursor.page, fragment, False)
        data = {"visitor": visitor, "page": fragment}
        return self.respond(request, "fragment.html", data, visitor)

    # --- responses ------------------------------------------------------------------------------

    def respond(self, request: Request, template: str, data: dict[str, Any], visitor: Visitor) -> Response:
        body = _encode(data)
        page: Fragment = data["page"]  # the ETag covers what is shown, not how long it took
        shown = _encode(
            [page.version, page.sections, page.fallbacks, {k: v for k, v in data.items() if k != "page"}]
        )
        etag = '"' + hashlib.blake2b(shown, digest_size=12).hexdigest() + '"'
        if visitor.profile is None and self.settings.public_max_age:
            cache = f"public, max-age={self.settings.public_max_age}"
        else:
            cache = "private, no-cache"  # a profile's page, or a preview: always revalidated
        headers = {"ETag": etag, "Cache-Control": cache, "Vary": "Cookie"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if request.url.path.endswith(".json"):
            return Response(body, media_type="application/json", headers=headers)
        context = json.loads(body)  # the HTML renders exactly what the JSON twin says
        chosen = request.query_params.get("country", request.cookies.get("marrow_country", ""))
        root = str(request.scope.get("root_path", ""))  # mounted under a path: the editor's preview
        context.update(
            settings=self.settings,
            devices=DEVICES,
            json_url=_json_url(request),
            chosen_country=chosen,
            root=root,
        )
        response = HTMLResponse(self.templates.get_template(template).render(context), headers=headers)
        for name in ("device", "country", "profile"):
            if name in request.query_params:
                response.set_cookie(f"marrow_{name}", request.query_params[name], samesite="lax")
        return response


def _offset(request: Request) -> int | None:
    """``?offset=N``: read at least write N (a save's token), waiting for it — the preview's read."""
    raw = request.query_params.get("offset")
    if raw is None:
        return None
    if not raw.isdigit():
        raise Problem(400, f"offset must be a write's offset (a non-negative integer), not {raw!r}")
    return int(raw)


def _json_url(request: Request) -> str:
    path = request.url.path.rstrip("/") or "/index"
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{path}.json{query}"


def _title(view: Any, title_id: int, device: str) -> dict[str, Any]:
    t = view["Title"].get(title_id)
    if t is None:
        raise Problem(404, f"no title {title_id}")
    fields = ["id", "slug", "name", "kind", "synopsis", "year", "maturity", "runtime", "genres", "cast"]
    out = {f: getattr(t, f) for f in fields}
    out["image"] = t.artwork.get(device, "")
    return out


def _story(view: Any, slug: str, device: str) -> dict[str, Any]:
    found = view["Story"].find("slug", slug) if "Story" in view else []
    if not found:
        raise Problem(404, f"no story {slug!r}")
    s = found[0]
    try:
        blocks = json.loads(s.body)
    except ValueError:
        blocks = [{"kind": "text", "html": jinja2.utils.markupsafe.escape(s.body)}]
    return {
        "id": s.id,
        "slug": s.slug,
        "headline": s.headline,
        "summary": s.summary,
        "blocks": blocks,
        "image": s.hero.get(device, ""),
        "published": s.published,
        "revision": s.revision,
    }


def site_app(views: Views, builder: PageBuilder, settings: SiteSettings | None = None) -> Starlette:
    """The visitor site over ``views`` (where versions come from) and ``builder``."""
    site = Site(views, builder, settings or SiteSettings())

    def handle(fn: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                return fn(request)
            except Problem as p:
                return _problem(request, p.status, p.message)
            except RequestError as e:
                return _problem(request, 400, str(e))
            except ReadTimeoutError as e:  # a read at an offset that did not arrive in time
                return _problem(request, 504, str(e))
            except MarrowError as e:
                return _problem(request, 503, str(e))

        return endpoint

    def title_id(request: Request) -> int:
        slug = request.path_params["slug"]
        found = site.views.current()["Title"].find("slug", slug)
        if not found:
            raise Problem(404, f"no title {slug!r}")
        return int(found[0].id)

    def search(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        if len(q) > MAX_QUERY:
            raise Problem(400, f"the query is {len(q)} characters; at most {MAX_QUERY}")
        return site.page(request, "search", query=q)

    def complete_endpoint(request: Request) -> Response:
        q = request.query_params.get("q", "")[:MAX_QUERY]
        return JSONResponse(
            {"q": q, "suggestions": complete(catalogue(site.views.current()), q) if q.strip() else []}
        )

    async def engage(request: Request) -> Response:
        is_json = request.headers.get("content-type", "").startswith("application/json")
        try:
            raw: Any = await request.json() if is_json else dict(await request.form())
        except ValueError:
            return _problem(request, 400, "the body is not valid JSON")
        if not isinstance(raw, dict):
            return _problem(request, 400, "the body must be an object: {title, action, progress}")
        try:
            visitor = site.visitor(request)
            if visitor.profile is None:
                raise Problem(400, "choose a profile first: engagement belongs to a profile")
            title = int(raw.get("title", ""))
            event = Engagement(
                visitor.profile, title, str(raw.get("action", "")), float(raw.get("progress", 0))
            )
        except Problem as p:
            return _problem(request, p.status, p.message)
        except (ValueError, MarrowError) as e:
            return _problem(request, 400, f"bad engagement: {e}")
        if site.builder.engagement is None:
            return _problem(request, 503, "this site records no engagement")
        site.builder.engagement.record(event)
        if is_json:
            return Response(status_code=204)
        back = request.headers.get("referer") or str(request.scope.get("root_path", "")) + "/"
        return RedirectResponse(back, status_code=303)

    def metrics(request: Request) -> Response:
        return PlainTextResponse(
            generate_latest(site.metrics.registry), media_type="text/plain; version=0.0.4"
        )

    routes = [
        Route("/", handle(lambda r: site.page(r, "home"))),
        Route("/index.json", handle(lambda r: site.page(r, "home"))),
        Route("/titles/{slug}.json", handle(lambda r: site.page(r, "title", title_id(r)))),
        Route("/titles/{slug}", handle(lambda r: site.page(r, "title", title_id(r)))),
        Route("/stories/{slug}.json", handle(lambda r: site.page(r, "story", r.path_params["slug"]))),
        Route("/stories/{slug}", handle(lambda r: site.page(r, "story", r.path_params["slug"]))),
        Route("/genre/{genre}.json", handle(lambda r: site.page(r, "genre", r.path_params["genre"]))),
        Route("/genre/{genre}", handle(lambda r: site.page(r, "genre", r.path_params["genre"]))),
        Route("/search.json", handle(search)),
        Route("/search", handle(search)),
        Route("/fragment.json", handle(site.fragment)),
        Route("/fragment", handle(site.fragment)),
        Route("/complete.json", handle(complete_endpoint)),
        Route("/engage", engage, methods=["POST"]),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.site = site
    return app


def _problem(request: Request, status: int, message: str) -> Response:
    wants_json = request.url.path.endswith(".json") or any(
        request.headers.get(h, "").startswith("application/json") for h in ("accept", "content-type")
    )
    if wants_json:
        return JSONResponse({"error": message, "status": status}, status_code=status)
    return HTMLResponse(
        f"<!doctype html><title>{status}</title><h1>{status}</h1>"
        f'<p>{jinja2.utils.markupsafe.escape(message)}</p><p><a href="/">Home</a></p>',
        status_code=status,
    )
