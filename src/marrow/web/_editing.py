"""What the editor's page handlers share (:mod:`marrow.web.editor` and its layout pages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from marrow.cms.events import ContentEvent
from marrow.cms.store import CMS
from marrow.errors import MarrowError, RevisionConflictError
from marrow.ingest.report import Report
from marrow.web._auth import Forbidden

Ingest = Callable[[Sequence[ContentEvent]], Report]
#: what a page handler is given: the session (None on public pages) and the submitted form
Context = tuple[Any, dict[str, str]]
#: wraps a handler into a route endpoint: signs in, checks CSRF on writes, renders what it returns
PageWrapper = Callable[..., Callable[[Request], Any]]


class ShowPage(Exception):
    """Answer with this page now (a form shown again with errors, a conflict)."""

    def __init__(self, status: int, template: str, data: dict[str, Any]):
        super().__init__(template)
        self.status, self.template, self.data = status, template, data


class Form(Protocol):
    def error(self, path: str, message: str) -> None: ...


def after_change(
    ingest: Ingest,
    event: ContentEvent,
    revision: int,
    form: Form,
    channel: str,
    url: str,
    show: Callable[[int, str], ShowPage],
) -> Response:
    """Ingest a saved (or published) document at once; then to its page (``url``), read at the offset
    of the ``channel`` write (``?offset=N``). If ingestion is away or refuses the document, the
    page is shown again (``show(status, notice)``) with the errors by their fields: saved, not laid out."""
    try:
        report = ingest([event])
    except MarrowError as e:
        notice = f"Saved as revision {revision}; the preview follows once ingestion is back ({e})."
        raise show(202, notice) from None
    failed = [o for o in report.outcomes if o.errors and (o.event.kind, o.event.id) == (event.kind, event.id)]
    if failed:
        for outcome in failed:
            for error in outcome.errors:
                form.error(error.field, error.message)
        where = " and ".join(sorted({o.channel for o in failed}))
        raise show(422, f"Saved as revision {revision}, but not published to {where}: fix the errors below.")
    offset = report.offsets.get(channel)
    suffix = f"?offset={offset}" if offset is not None else ""
    return RedirectResponse(url + suffix, status_code=303)


def base_revision(form: dict[str, str]) -> int | None:
    """The revision a submitted form was loaded from (None: a new document, or none said)."""
    text = form.get("revision", "")
    return int(text) if text.isdigit() else None


def ingested_errors(cms: CMS, channel: str, kind: str, id: int, revision: int, form: Form) -> None:
    """Put on ``form`` the errors ingestion found in the document, if it found them in ``revision``
    (its latest): a page opened after a failed save shows them by their fields."""
    entry = cms.ledger.entries(channel, [(kind, id)]).get((kind, id))
    if entry is not None and entry.revision == revision and entry.errors:
        for e in entry.errors:
            form.error(e["field"], e["message"])


def publisher(
    cms: CMS,
    kind: str,
    form_of: Callable[[Any], Form],
    conflict: Callable[[int, Any, int], ShowPage],
    changed: Callable[[int, int, Any, ContentEvent], Response],
) -> Callable[[Request, Context], Response]:
    """The handler that publishes a document of ``kind`` at the revision its page showed: a newer one
    saved since is a conflict (``conflict(id, form, revision)``, the page again with the error), and
    what follows is the same as after a save (``changed(id, revision, form, event)``)."""

    def publish(request: Request, ctx: Context) -> Response:
        session, data = ctx
        id = path_id(request)
        item = cms.get(kind, id)
        try:
            done = cms.publish(kind, id, editor=session.editor.username, revision=base_revision(data))
        except RevisionConflictError as e:
            form = form_of(item.doc)
            form.error("revision", str(e))
            raise conflict(id, form, item.revision) from None
        return changed(id, item.revision, form_of(item.doc), done.event)

    return publish


def path_id(request: Request) -> int:
    return int(request.path_params["id"])


def int_param(request: Request, name: str) -> int | None:
    text = request.query_params.get(name, "")
    if not text:
        return None
    if not text.isdigit():
        raise Forbidden(400, f"{name} must be a whole number, not {text!r}")
    return int(text)
