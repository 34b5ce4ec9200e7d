"""The editor: sign in, find stories, edit, save a draft, publish, and preview the saved draft.

Server-rendered pages (no JavaScript), each with a JSON twin at the same path plus ``.json``::

    GET  /sign-in                      the sign-in form            POST /sign-in, POST /sign-out
    GET  /stories                      search (?q=, ?status=, ?page=)
    GET  /stories/new                  an empty story              POST /stories        create it
    GET  /stories/{id}                 the draft, its errors,      POST /stories/{id}   save (or add a block)
                                       revisions and audit, and    POST /stories/{id}/publish
                                       the preview beside it       POST /stories/{id}/unpublish
    GET  /layouts, /layouts/{id}       page layouts: their sections,    POST /layouts/{id}   save
                                       the laid-out page in preview     POST /layouts/{id}/publish
                                       (see :mod:`marrow.web._layouts`)
    GET  /preview/...                  the visitor site over the preview channel (signed-in only): the
                                       story's real page, read at the save's offset (?offset=N)

Lifecycle of a save: the form is parsed (a malformed id is an inline error, nothing saved); the CMS
saves it as the next revision of the one the form was loaded from (a stale one is a conflict naming
both revisions, nothing saved); ``ingest`` runs the pipeline for the save's event at once and returns
the offset of the preview write; the page reloads with the preview read *strongly* at that offset,
so the editor sees their own change. If ingestion finds errors they are shown next to their fields,
nothing reaches the preview, and the preview keeps the last good version. (The save's event also
goes through the outbox; ingestion is idempotent, so the second delivery is a no-op.)

The app is a thin shell: ``cms`` (the store), ``ingest`` (the pipeline, e.g. ``Ingestion.ingest``)
and ``preview_site`` (the visitor site, :func:`marrow.web.site.site_app`, over the preview channel's
local client: a page read at ``?offset=N`` waits for that write) are given to :func:`editor_app`. The
preview is the real page, not a look-alike. Every page, every write and the preview refuse anonymous
requests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from marrow.cms.events import ContentEvent
from marrow.cms.model import Story
from marrow.cms.store import CMS
from marrow.errors import AuthError, ContentError, MarrowError, NotFoundError, RevisionConflictError
from marrow.ingest.rules import TEMPLATES
from marrow.web._auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Forbidden,
    check_csrf,
    login_token,
    session_of,
    sign_in_redirect,
)
from marrow.web._editing import (
    Context,
    Ingest,
    ShowPage,
    after_change,
    base_revision,
    ingested_errors,
    int_param,
    path_id,
    publisher,
)
from marrow.web._layouts import layout_routes
from marrow.web._storyform import BLOCK_KINDS, StoryForm, blank_block, form_of, parse_form

__all__ = ["EditorSettings", "editor_app"]

_HERE = Path(__file__).parent
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' https: data:; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class EditorSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The editor app (section ``[editor]``, environment ``MARROW_EDITOR_*``)."""

    #: send the session cookie over HTTPS only; turn off only to try the editor on plain local HTTP
    secure_cookies: bool = True
    session_hours: Annotated[float, msgspec.Meta(gt=0, le=24 * 30)] = 8.0
    per_page: Annotated[int, msgspec.Meta(ge=1, le=500)] = 25
    #: the channel (render-ready namespace) preview reads
    channel: str = "preview"


def editor_app(
    cms: CMS, ingest: Ingest, preview_site: ASGIApp, settings: EditorSettings | None = None
) -> Starlette:
    """The editor as an ASGI app (see the module docstring)."""
    settings = settings or EditorSettings()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates" / "editor"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["date"] = lambda t: "" if t is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))
    channel = settings.channel

    def render(
        request: Request, status: int, template: str, data: dict[str, Any], session: Any = None
    ) -> Response:
        if request.url.path.endswith(".json"):
            return JSONResponse(data, status_code=status, headers=_HEADERS)
        root = str(request.scope.get("root_path", ""))
        context = {"root": root, "session": session, "json_url": f"{request.url.path}.json", **data}
        return HTMLResponse(
            env.get_template(template).render(**context), status_code=status, headers=_HEADERS
        )

    def page(
        handler: Callable[[Request, Context], Any], *, public: bool = False, write: bool = False
    ) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            form: dict[str, str] = {}
            if request.method == "POST":
                form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
            # the rest reads and writes the database: in Starlette's thread pool, off the event loop
            return await run_in_threadpool(answer, request, form)

        def answer(request: Request, form: dict[str, str]) -> Response:
            session = session_of(request, cms.editors)
            try:
                if session is None and not public:
                    if request.url.path.endswith(".json") or request.method == "POST":
                        raise Forbidden(
                            401, "sign in first: this page and every write need an editor's session"
                        )
                    return sign_in_redirect(request, str(request.scope.get("root_path", "")))
                if write and session is not None:
                    check_csrf(form.get("csrf"), session.csrf)
                result = handler(request, (session, form))
            except Forbidden as e:
                return render(
                    request, e.status, "error.html", {"error": e.message, "status": e.status}, session
                )
            except ShowPage as p:
                return render(request, p.status, p.template, p.data, session)
            except NotFoundError as e:
                return render(request, 404, "error.html", {"error": str(e), "status": 404}, session)
            except MarrowError as e:  # anything else the library refused: say what, never a 500
                return render(request, 400, "error.html", {"error": str(e), "status": 400}, session)
            if isinstance(result, Response):
                return result
            status, template, data = result
            return render(request, status, template, data, session)

        return run

    # --- sign-in --------------------------------------------------------------------------------

    def sign_in_page(request: Request, ctx: Context) -> Response:
        session, _ = ctx
        token = login_token(request)
        data = {
            "next": request.query_params.get("next", "/stories"),
            "error": None,
            "username": "",
            "login_token": token,
        }
        response = render(request, 200, "sign_in.html", data, session)
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies
        )
        return response

    def sign_in(request: Request, ctx: Context) -> Response:
        _, form = ctx
        check_csrf(form.get("login_token"), request.cookies.get(LOGIN_COOKIE, ""))
        username, target = form.get("username", "").strip(), form.get("next", "/stories")
        if not target.startswith("/") or target.startswith("//"):
            target = "/stories"  # never redirect off the site
        try:
            new = cms.editors.sign_in(username, form.get("password", ""), ttl=settings.session_hours * 3600)
        except AuthError as e:
            data = {
                "next": target,
                "error": str(e),
                "username": username,
                "login_token": form.get("login_token"),
            }
            raise ShowPage(401, "sign_in.html", data) from None
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, new.token, max_age=int(settings.session_hours * 3600), httponly=True,
            samesite="lax", secure=settings.secure_cookies,
        )  # fmt: skip
        response.delete_cookie(LOGIN_COOKIE)
        return response

    def sign_out(request: Request, ctx: Context) -> Response:
        cms.editors.sign_out(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    # --- stories --------------------------------------------------------------------------------

    def stories(request: Request, ctx: Context) -> tuple[int, str, dict[str, Any]]:
        q = request.query_params.get("q", "")
        status = request.query_params.get("status") or None
        try:
            page_no = max(1, int(request.query_params.get("page", "1")))
            items, total = cms.search("story", q, status=status, limit=settings.per_page,
                                      offset=(page_no - 1) * settings.per_page)  # fmt: skip
        except (ValueError, ContentError) as e:
            raise Forbidden(400, f"bad search: {e}") from None
        rows = [
            {"id": i.id, "headline": i.label, "slug": i.slug, "status": i.status, "revision": i.revision,
             "updated_by": i.updated_by, "updated_at": i.updated_at, "url": f"/stories/{i.id}"}
            for i in items
        ]  # fmt: skip
        pages = max(1, math.ceil(total / settings.per_page))
        nav = {"q": q, "status": status or ""}
        return 200, "stories.html", {
            "q": q, "status": status, "stories": rows, "total": total, "page": page_no, "pages": pages,
            "prev_url": f"/stories?{urlencode({**nav, 'page': page_no - 1})}" if page_no > 1 else None,
            "next_url": f"/stories?{urlencode({**nav, 'page': page_no + 1})}" if page_no < pages else None,
        }  # fmt: skip

    def story_data(
        id: int | None, form: StoryForm, revision: int | None, offset: int | None, notice: str | None = None
    ) -> dict[str, Any]:
        item = cms.get("story", id) if id is not None else None
        return {
            "id": id,
            "revision": revision,
            "status": item.status if item else "new",
            "published_revision": item.published_revision if item else None,
            "form": form.as_dict(),
            "templates": list(TEMPLATES),
            "block_kinds": list(BLOCK_KINDS),
            "offset": offset,
            "notice": notice,
            "preview_url": None
            if id is None or not form.slug
            else f"/preview/stories/{form.slug}" + (f"?offset={offset}" if offset is not None else ""),
            "revisions": [] if id is None else [r.__dict__ for r in cms.revisions("story", id)[:10]],
            "audit": [] if id is None else [a.__dict__ for a in cms.audit("story", id, limit=10)],
        }

    def story_page(request: Request, ctx: Context) -> tuple[int, str, dict[str, Any]]:
        id = path_id(request)
        item = cms.get("story", id)
        assert isinstance(item.doc, Story)
        form = form_of(item.doc)
        ingested_errors(cms, channel, "story", id, item.revision, form)
        offset = int_param(request, "offset")
        return 200, "story.html", story_data(id, form, item.revision, offset)

    def new_story(request: Request, ctx: Context) -> tuple[int, str, dict[str, Any]]:
        form = StoryForm(blocks=[blank_block("text")])
        return 200, "story.html", story_data(None, form, None, None)

    def save(request: Request, ctx: Context) -> Response:
        session, data = ctx
        id = path_id(request) if "id" in request.path_params else None
        base = base_revision(data)
        form, story = parse_form(data)
        action = data.get("action", "save")
        if action.startswith("add:") and action[4:] in BLOCK_KINDS:
            form.blocks.append(blank_block(action[4:]))
            raise ShowPage(200, "story.html", story_data(id, form, base, None))
        if story is None:
            raise ShowPage(422, "story.html", story_data(id, form, base, None))
        try:
            saved = cms.save("story", id, story, base=base, editor=session.editor.username)
        except RevisionConflictError as e:
            form.error("revision", str(e))
            raise ShowPage(409, "story.html", story_data(id, form, base, None)) from None
        except ContentError as e:
            form.error("slug" if "slug" in str(e) else "form", str(e))
            raise ShowPage(422, "story.html", story_data(id, form, base, None)) from None
        id, revision = saved.item.id, saved.item.revision
        return _after_change(id, revision, form, saved.event)

    def _after_change(id: int, revision: int, form: StoryForm, event: ContentEvent) -> Response:
        def show(status: int, notice: str) -> ShowPage:
            return ShowPage(status, "story.html", story_data(id, form, revision, None, notice))

        return after_change(ingest, event, revision, form, channel, f"/stories/{id}", show)

    def _conflict(id: int, form: StoryForm, revision: int) -> ShowPage:
        return ShowPage(409, "story.html", story_data(id, form, revision, None))

    publish = publisher(cms, "story", form_of, _conflict, _after_change)

    def unpublish(request: Request, ctx: Context) -> Response:
        session, _ = ctx
        id = path_id(request)
        item = cms.get("story", id)
        assert isinstance(item.doc, Story)
        try:
            done = cms.unpublish("story", id, editor=session.editor.username)
        except ContentError as e:
            raise Forbidden(409, str(e)) from None
        return _after_change(id, item.revision, form_of(item.doc), done.event)

    routes: list[Route | Mount] = [
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
        Route("/", lambda r: RedirectResponse("/stories", status_code=303)),
        Route("/sign-in", page(sign_in_page, public=True), methods=["GET"]),
        Route("/sign-in", page(sign_in, public=True), methods=["POST"]),
        Route("/sign-out", page(sign_out, write=True), methods=["POST"]),
        Route("/stories", page(save, write=True), methods=["POST"]),
        Route("/stories/new.json", page(new_story)),
        Route("/stories/new", page(new_story)),
        Route("/stories/{id:int}/publish", page(publish, write=True), methods=["POST"]),
        Route("/stories/{id:int}/unpublish", page(unpublish, write=True), methods=["POST"]),
        Route("/stories/{id:int}.json", page(story_page)),
        Route("/stories/{id:int}", page(story_page), methods=["GET"]),
        Route("/stories/{id:int}", page(save, write=True), methods=["POST"]),
        Route("/stories.json", page(stories)),
        Route("/stories", page(stories), methods=["GET"]),
        *layout_routes(cms, ingest, page, channel),
        Mount("/preview", app=_signed_in(preview_site, cms)),
    ]
    return Starlette(routes=routes)


def _signed_in(app: ASGIApp, cms: CMS) -> ASGIApp:
    """``app`` for editors only: anonymous requests are sent to sign in (pages) or refused (JSON)."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if await run_in_threadpool(session_of, request, cms.editors) is None:
            editor_root = str(scope.get("root_path", "")).removesuffix("/preview")
            if request.url.path.endswith(".json"):
                response: Response = JSONResponse(
                    {"error": "sign in first: the preview is for editors", "status": 401}, status_code=401
                )
            else:
                response = sign_in_redirect(request, editor_root)
            await response(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded
