"""What the editor's page handlers share (:mod:`marrow.web.editor` and its layout pages)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request

from marrow.cms.events import ContentEvent
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


def path_id(request: Request) -> int:
    return int(request.path_params["id"])


def int_param(request: Request, name: str) -> int | None:
    text = request.query_params.get(name, "")
    if not text:
        return None
    if not text.isdigit():
        raise Forbidden(400, f"{name} must be a whole number, not {text!r}")
    return int(text)
