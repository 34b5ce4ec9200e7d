"""The editor's layout pages: list the page layouts, edit one's sections, save, publish, preview.

    GET  /layouts                 every layout (page type × device), with its status
    GET  /layouts/{id}            its sections, and the page it lays out    POST /layouts/{id}   save
                                  in the preview, read at the save's offset POST /layouts/{id}/publish

A save goes the way of a story's (:mod:`marrow.web.editor`): the CMS keeps the next revision, ingestion
writes it to the preview channel as a ``Layout`` record at once, and the page reloads with the preview
of the laid-out page read at that offset — the preview site builds with editors' layouts. Errors
ingestion finds (an unknown kind, a collection section without its collection) are shown by their
section, and the preview keeps the last good layout.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marrow.cms.events import ContentEvent
from marrow.cms.model import PageLayout
from marrow.cms.store import CMS
from marrow.errors import ContentError, RevisionConflictError
from marrow.ingest.validate import PAGES, SECTION_KINDS
from marrow.records import DEVICES
from marrow.web._editing import (
    Context,
    Ingest,
    PageWrapper,
    ShowPage,
    after_change,
    base_revision,
    ingested_errors,
    int_param,
    path_id,
    publisher,
)
from marrow.web._layoutform import LayoutForm, blank_section, form_of, parse_form

__all__ = ["layout_routes"]

_PREVIEWS = {"home": "/preview/", "genre": "/preview/genre/Drama"}  # a page to show each layout on


def layout_routes(cms: CMS, ingest: Ingest, page: PageWrapper, channel: str) -> list[Route]:
    """The routes of the layout pages; ``page`` wraps a handler (sign-in, CSRF, rendering)."""

    def layouts(request: Request, ctx: Context) -> tuple[int, str, dict[str, Any]]:
        items, total = cms.search("layout", limit=500)
        rows = [
            {"id": i.id, "label": i.label, "status": i.status, "revision": i.revision,
             "updated_by": i.updated_by, "updated_at": i.updated_at, "url": f"/layouts/{i.id}"}
            for i in sorted(items, key=lambda i: i.label)
        ]  # fmt: skip
        return 200, "layouts.html", {"layouts": rows, "total": total}

    def layout_data(
        id: int, form: LayoutForm, revision: int | None, offset: int | None, notice: str | None = None
    ) -> dict[str, Any]:
        item = cms.get("layout", id)
        preview = _PREVIEWS.get(form.page)
        query = f"?device={quote(form.device)}" + (f"&offset={offset}" if offset is not None else "")
        return {
            "id": id,
            "revision": revision,
            "status": item.status,
            "published_revision": item.published_revision,
            "form": form.as_dict(),
            "kinds": list(SECTION_KINDS),
            "pages": list(PAGES),
            "devices": list(DEVICES),
            "offset": offset,
            "notice": notice,
            "preview_url": None if preview is None else preview + query,
            "revisions": [r.__dict__ for r in cms.revisions("layout", id)[:10]],
        }

    def layout_page(request: Request, ctx: Context) -> tuple[int, str, dict[str, Any]]:
        id = path_id(request)
        item = cms.get("layout", id)
        assert isinstance(item.doc, PageLayout)
        form = form_of(item.doc)
        ingested_errors(cms, channel, "layout", id, item.revision, form)
        return 200, "layout.html", layout_data(id, form, item.revision, int_param(request, "offset"))

    def save(request: Request, ctx: Context) -> Response:
        session, data = ctx
        id = path_id(request)
        base = base_revision(data)
        form, layout = parse_form(data)
        if data.get("action") == "add":
            form.sections.append(blank_section())
            raise ShowPage(200, "layout.html", layout_data(id, form, base, None))
        if layout is None:
            raise ShowPage(422, "layout.html", layout_data(id, form, base, None))
        try:
            saved = cms.save("layout", id, layout, base=base, editor=session.editor.username)
        except RevisionConflictError as e:
            form.error("revision", str(e))
            raise ShowPage(409, "layout.html", layout_data(id, form, base, None)) from None
        except ContentError as e:
            form.error("form", str(e))
            raise ShowPage(422, "layout.html", layout_data(id, form, base, None)) from None
        return changed(id, saved.item.revision, form, saved.event)

    def changed(id: int, revision: int, form: LayoutForm, event: ContentEvent) -> Response:
        def show(status: int, notice: str) -> ShowPage:
            return ShowPage(status, "layout.html", layout_data(id, form, revision, None, notice))

        return after_change(ingest, event, revision, form, channel, f"/layouts/{id}", show)

    def conflict(id: int, form: LayoutForm, revision: int) -> ShowPage:
        return ShowPage(409, "layout.html", layout_data(id, form, revision, None))

    publish = publisher(cms, "layout", form_of, conflict, changed)
    return [
        Route("/layouts.json", page(layouts)),
        Route("/layouts", page(layouts)),
        Route("/layouts/{id:int}/publish", page(publish, write=True), methods=["POST"]),
        Route("/layouts/{id:int}.json", page(layout_page)),
        Route("/layouts/{id:int}", page(layout_page), methods=["GET"]),
        Route("/layouts/{id:int}", page(save, write=True), methods=["POST"]),
    ]
