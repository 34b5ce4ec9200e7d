"""The store explorer: browse and query one dataset held by a consumer (or a single state).

Every page is server-rendered HTML and has a JSON twin at the same path plus ``.json``::

    /                          overview: version, state tag, per type records, memory, fields; metrics
    /types/{type}              records by ordinal, 50 a page (?page=N), and the query forms
    /types/{type}/{ordinal}    one record; references link to the records they point to
    /types/{type}/key          one record by primary key, one parameter per key field (?id=42)
    /types/{type}/find         hash index: records holding a value (?field=genres&value=drama&page=N)
    /types/{type}/complete     prefix index: autocomplete (?field=title&prefix=da&limit=20)
    /history                   what each of the consumer's last refreshes added, removed, changed
    /diff                      what changed between any two versions (?from=3&to=7)

The overview's twin is ``/.json``; the links in a JSON answer lead to JSON twins. Query values are
typed by their field: integers are parsed and range-checked, booleans are ``true``/``false``, bytes
are hex, and a reference is the ordinal of the record it points to, as the pages show it (see
:mod:`marrow.web._values`).

Lifecycle: :func:`explorer_app` wraps a source — a :class:`~marrow.store.consumer.Consumer`, anything
with a ``.state``, or a plain :class:`~marrow.store.ReadState` — and optionally the consumer's
:class:`~marrow.store.history.History`. Each request reads ``source.state`` once and answers from that
version alone, so a page is whole and consistent while the consumer refreshes underneath. Ordinals
are per version: links to records carry ``?version=N``, and a record page opened at another version
says so. Indexes are built on a type's first query (as everywhere in the store), which is when the
overview starts counting their bytes.

Invariants: the HTML of a page renders exactly the data its JSON twin returns (the thin-shell rule);
bad input — an unknown type, field, record or page, a value that does not parse as its field's type —
is a 4xx page or JSON object ``{"error": ..., "status": ...}`` that says what was wrong, never a 500.
All output is escaped (Jinja2 autoescape).

The package: the states a request reads (``_source``), the pages that turn a state into data
(``_pages``), and here the app that routes to them and renders their data as HTML or JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from marrow.errors import MarrowError, NotFoundError
from marrow.store.history import History
from marrow.web._values import BadValue, jsonable
from marrow.web.explorer._pages import (
    PER_PAGE,
    Links,
    Page,
    complete_page,
    diff_page,
    find_page,
    history_page,
    key_page,
    overview,
    record_page,
    type_page,
)
from marrow.web.explorer._source import Explorer, Problem

__all__ = ["PER_PAGE", "explorer_app"]

_WEB = Path(__file__).parent.parent  # marrow/web: the templates and static files


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_WEB / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a template naming data the page lacks fails its test
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda n: "" if n is None else f"{n:,}"
    return env


def explorer_app(source: Any, history: History | None = None) -> Starlette:
    """The explorer as an ASGI app over ``source`` (a Consumer, anything with ``.state``, or a ReadState)."""
    ex = Explorer(source, history)
    env = _environment()

    def respond(request: Request, status: int, template: str, title: str, data: dict[str, Any]) -> Response:
        data = jsonable(data)
        path = request.url.path
        if path.endswith(".json"):
            return JSONResponse(data, status_code=status)
        query = f"?{request.url.query}" if request.url.query else ""
        html = env.get_template(template).render(
            title=title,
            root=Links(request).root,
            json_url=f"{path}.json{query}",
            has_history=history is not None,
            **data,
        )
        return HTMLResponse(html, status_code=status)

    def endpoint(handler: Callable[[Explorer, Request], Page]) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
            try:
                page = handler(ex, request)
            except Problem as e:
                return problem(request, e.status, e.message)
            except BadValue as e:
                return problem(request, 400, str(e))
            except NotFoundError as e:
                return problem(request, 404, str(e))
            except MarrowError as e:  # e.g. a prefix query on a field that is not a string
                return problem(request, 400, str(e))
            return respond(request, 200, page.template, page.title, page.data)

        return run

    def problem(request: Request, status: int, message: str) -> Response:
        return respond(request, status, "error.html", f"Error {status}", {"error": message, "status": status})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = f"no page at {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return problem(request, exc.status_code, message)

    pages: list[tuple[str, Callable[[Explorer, Request], Page]]] = [
        ("/", overview),
        ("/history", history_page),
        ("/diff", diff_page),
        ("/types/{type}", type_page),
        ("/types/{type}/key", key_page),  # before {ordinal}, which would match "key" too
        ("/types/{type}/find", find_page),
        ("/types/{type}/complete", complete_page),
        ("/types/{type}/{ordinal}", record_page),
    ]
    routes: list[Route | Mount] = [Mount("/static", StaticFiles(directory=_WEB / "static"), name="static")]
    for path, handler in pages:
        run = endpoint(handler)
        # the twin first: "{type}" would otherwise match "Title.json"
        routes += [Route(f"{path}.json", run), Route(path, run)]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
