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
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from marrow.errors import MarrowError, NotFoundError, RefreshError
from marrow.store.consumer import load_version
from marrow.store.history import History, VersionDiff, diff
from marrow.store.read import ReadState, TypeReader
from marrow.web._values import BadValue, RecordsJSON, as_text, jsonable, parse_value

__all__ = ["PER_PAGE", "explorer_app"]

PER_PAGE = 50  #: records on one page of a type or of a hash index query
MAX_COMPLETIONS = 500
_HERE = Path(__file__).parent
_LOADED_VERSIONS = 2  # states of other versions kept for /diff: each is a whole dataset in memory


class Problem(Exception):
    """Bad input: answered with ``status`` and ``message`` (what was wrong, what to do)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Page:
    """What a page handler returns: JSON-able data, and the template that renders it as HTML."""

    template: str
    title: str
    data: dict[str, Any]


class Explorer:
    """The source of states for the pages: the current one, and others loaded for diffs."""

    def __init__(self, source: Any, history: History | None):
        self.source = source
        self.history = history
        self.retriever = getattr(source, "retriever", None)
        self._loaded: dict[int, ReadState] = {}
        self._lock = threading.Lock()

    def state(self) -> ReadState:
        """The current version, read once per request."""
        if isinstance(self.source, ReadState):
            return self.source
        try:
            return self.source.state
        except RefreshError as e:
            raise Problem(503, f"no version to explore yet: {e}") from None

    def metrics(self, state: ReadState) -> dict[str, Any] | None:
        metrics = getattr(self.source, "metrics", None)
        return metrics.as_dict(state) if metrics is not None else None

    def diff(self, before: int, after: int) -> VersionDiff:
        """The history's entry when it holds this pair, else a diff of the two versions loaded."""
        for entry in self.history.entries() if self.history is not None else []:
            if (entry.before, entry.after) == (before, after):
                return entry
        return diff(self.state_at(before), self.state_at(after))

    def state_at(self, version: int) -> ReadState:
        current = self.state()
        if current.version == version:
            return current
        if self.retriever is None:
            raise Problem(
                404, f"version {version} is not in memory and this explorer has no blob store to load it from"
            )
        with self._lock:  # one load at a time: two concurrent loads of a dataset would double memory
            state = self._loaded.get(version)
            if state is None:
                try:
                    state = load_version(self.retriever, version)
                except (MarrowError, OSError) as e:
                    raise Problem(404, f"version {version} cannot be loaded: {e}") from None
                while len(self._loaded) >= _LOADED_VERSIONS:
                    self._loaded.pop(next(iter(self._loaded)))
                self._loaded[version] = state
            return state

    def versions(self) -> list[int]:
        """Versions that a diff can name: those of the history and those of the blob store."""
        found = (
            {v for e in self.history.entries() for v in (e.before, e.after) if v is not None}
            if self.history
            else set()
        )
        refs = getattr(self.retriever, "refs", None)
        if refs is not None:
            with contextlib.suppress(MarrowError, OSError):  # a store that is down: the history's versions
                found.update(ref.version for ref in refs())
        current = self.state().version
        if current is not None:
            found.add(current)
        return sorted(found)


def _records(state: ReadState, links: Links) -> RecordsJSON:
    """Records of ``state`` as JSON, linked to their pages at this version (ordinals are per version)."""
    return RecordsJSON(state, lambda name, o: links(f"/types/{name}/{o}", version=state.version))


class Links:
    """URLs of the explorer's pages, for one request: under the app's root path, and ending in
    ``.json`` when the request did, so that a JSON client can follow the links it is given."""

    def __init__(self, request: Request):
        self.root = str(request.scope.get("root_path", ""))
        self.suffix = ".json" if request.url.path.endswith(".json") else ""

    def __call__(self, path: str, **params: Any) -> str:
        query = urlencode({k: as_text(v) for k, v in params.items() if v is not None})
        return f"{self.root}{path}{self.suffix}" + (f"?{query}" if query else "")


def _int(request: Request, name: str, default: int | None, low: int = 0, high: int = 2**63 - 1) -> int:
    text = request.query_params.get(name, "")
    if text == "":
        if default is None:
            raise Problem(400, f"give {name}, an integer")
        return default
    try:
        value = int(text)
    except ValueError:
        raise Problem(400, f"{name} must be an integer, not {text!r}") from None
    if not low <= value <= high:
        raise Problem(400, f"{name} must be between {low} and {high}, not {value}")
    return value


def _required(request: Request, name: str, what: str, blank: bool = False) -> str:
    """A query parameter that must be given (and not be blank, unless ``blank``)."""
    value = request.query_params.get(name)
    if value is None or (not blank and not value.strip()):
        raise Problem(400, f"give {name}: {what}")
    return value


# --- pages ------------------------------------------------------------------------------------------


def overview(ex: Explorer, request: Request) -> Page:
    state = ex.state()
    links = Links(request)
    memory = state.memory()
    types = [_type_info(state[name], memory[name], links) for name in state]
    data = {
        "version": state.version,
        "tag": state.tag,
        "types": types,
        "records": sum(t["records"] for t in types),
        "data_bytes": sum(t["data_bytes"] for t in types),
        "index_bytes": sum(t["index_bytes"] for t in types),
        "metrics": ex.metrics(state),
    }
    return Page("overview.html", f"Version {state.version}", data)


def _type_info(reader: TypeReader, memory: Mapping[str, int], links: Links) -> dict[str, Any]:
    schema = reader.schema
    n = memory["records"]
    fields = []
    for f in schema.fields:
        targets = list(f.type.references())
        fields.append(
            {
                "name": f.name,
                "type": str(f.type),
                "kind": f.type.kind,
                "target_url": links(f"/types/{targets[0]}") if targets else None,
            }
        )
    return {
        "name": reader.name,
        "url": links(f"/types/{reader.name}"),
        "records": n,
        "data_bytes": memory["data_bytes"],
        "index_bytes": memory["index_bytes"],
        "bytes_per_record": round(memory["data_bytes"] / n, 1) if n else None,
        "primary_key": list(schema.primary_key),
        "fields": fields,
    }


def _type_page(
    ex: Explorer, request: Request, title: str, query: dict[str, Any] | None, ordinals: list[int] | None
) -> Page:
    """The type page: its records (``ordinals``, or all of them), a page at a time, and query forms."""
    state = ex.state()
    reader = state[request.path_params["type"]]
    links = Links(request)
    found = reader.ordinals() if ordinals is None else np.asarray(ordinals, dtype=np.int64)
    total = len(found)
    pages = max(1, -(-total // PER_PAGE))
    page = _int(request, "page", 1, low=1)
    if page > pages:
        raise Problem(404, f"there is no page {page}: {total:,} records make {pages} page(s) of {PER_PAGE}")
    shown = found[(page - 1) * PER_PAGE : page * PER_PAGE].tolist()
    here = {k: v for k, v in request.query_params.items() if k != "page"}
    path = request.url.path.removeprefix(links.root).removesuffix(".json")
    name = reader.name
    fields = reader.schema.fields
    data = {
        "version": state.version,
        "type": _type_info(reader, state.memory()[name], links),
        "query": query,
        "total": total,
        "page": page,
        "pages": pages,
        "per_page": PER_PAGE,
        "prev_url": links(path, **here, page=page - 1) if page > 1 else None,
        "next_url": links(path, **here, page=page + 1) if page < pages else None,
        "records": _records(state, links).records(reader, shown),
        "forms": {
            "key": {"url": links(f"/types/{name}/key"), "fields": list(reader.schema.primary_key)},
            "find": {
                "url": links(f"/types/{name}/find"),
                "fields": [f.name for f in fields if f.type.kind != "map"],
            },
            "complete": {
                "url": links(f"/types/{name}/complete"),
                "fields": [f.name for f in fields if f.type.kind == "string"],
            },
        },
    }
    return Page("type.html", title, data)


def type_page(ex: Explorer, request: Request) -> Page:
    return _type_page(ex, request, request.path_params["type"], None, None)


def find_page(ex: Explorer, request: Request) -> Page:
    reader = ex.state()[request.path_params["type"]]
    field = _required(request, "field", f"a field of {reader.name}")
    text = _required(request, "value", "the value to look up", blank=True)
    ftype = reader.schema.field(field).type
    value = parse_value(ftype, text, f"{reader.name}.{field}")
    found = reader.hash_index(field).find(value)
    query = {"kind": "find", "field": field, "value": text, "count": len(found)}
    return _type_page(ex, request, f"{reader.name} where {field} = {text}", query, found)


def complete_page(ex: Explorer, request: Request) -> Page:
    reader = ex.state()[request.path_params["type"]]
    field = _required(request, "field", f"a string field of {reader.name}")
    prefix = _required(request, "prefix", "the start of a word to complete")
    limit = _int(request, "limit", 20, low=1, high=MAX_COMPLETIONS)
    found = [v.ordinal for v in reader.complete(field, prefix, limit)]
    query = {"kind": "complete", "field": field, "prefix": prefix, "limit": limit, "count": len(found)}
    return _type_page(ex, request, f"{reader.name}: {field} starting with {prefix}", query, found)


def record_page(ex: Explorer, request: Request) -> Page:
    state = ex.state()
    reader = state[request.path_params["type"]]
    text = request.path_params["ordinal"]
    try:
        ordinal = int(text)
    except ValueError:
        raise Problem(400, f"a record's ordinal is an integer, not {text!r}") from None
    reader[ordinal]  # raises NotFoundError, naming the type and ordinal, when there is no such record
    asked = request.query_params.get("version")
    notice = None
    if asked is not None and asked != str(state.version):
        notice = (
            f"This link was made at version {asked}; the explorer now holds version {state.version}. "
            f"Ordinals are per version, so ordinal {ordinal} may now be another record."
        )
    return _record(state, reader, ordinal, Links(request), notice)


def key_page(ex: Explorer, request: Request) -> Page:
    state = ex.state()
    reader = state[request.path_params["type"]]
    key_fields = reader.schema.primary_key
    if not key_fields:
        raise Problem(400, f"type {reader.name} has no primary key; open its records by ordinal")
    missing = [k for k in key_fields if k not in request.query_params]
    if missing:
        raise Problem(400, f"give the primary key of {reader.name}: {', '.join(missing)} missing")
    values = [
        parse_value(reader.schema.field(k).type, request.query_params[k], f"{reader.name}.{k}")
        for k in key_fields
    ]
    view = reader.get(values[0] if len(values) == 1 else tuple(values))
    if view is None:
        shown = ", ".join(f"{k} = {request.query_params[k]}" for k in key_fields)
        raise Problem(404, f"no {reader.name} with {shown} in version {state.version}")
    return _record(state, reader, view.ordinal, Links(request), None)


def _record(state: ReadState, reader: TypeReader, ordinal: int, links: Links, notice: str | None) -> Page:
    record = _records(state, links).records(reader, [ordinal])[0]
    # Who points here: a link per reference field to this type; the hash index is built on click.
    referenced_from = [
        {
            "type": other,
            "field": f.name,
            "url": links(f"/types/{other}/find", field=f.name, value=ordinal),
        }
        for other in state
        for f in state[other].schema.fields
        if reader.name in f.type.references() and f.type.kind != "map"
    ]
    data = {
        "version": state.version,
        "notice": notice,
        "type": _type_info(reader, state.memory()[reader.name], links),
        "record": record,
        "referenced_from": referenced_from,
    }
    return Page("record.html", record["label"], data)


def history_page(ex: Explorer, request: Request) -> Page:
    if ex.history is None:
        raise Problem(
            404, "this explorer keeps no history: give explorer_app a History listener of the consumer"
        )
    state = ex.state()
    links = Links(request)
    limit = _int(request, "limit", 100, low=1)
    entries = [_diff_data(state, entry, links, limit) for entry in reversed(ex.history.entries())]
    data = {"version": state.version, "kept": ex.history.limit, "entries": entries}
    return Page("history.html", "History", data)


def diff_page(ex: Explorer, request: Request) -> Page:
    state = ex.state()
    given = [name for name in ("from", "to") if request.query_params.get(name, "") != ""]
    if len(given) == 1:
        raise Problem(400, "give both versions to compare: from and to")
    before = after = result = None
    if given:  # else: only the form
        before, after = _int(request, "from", None), _int(request, "to", None)
        limit = _int(request, "limit", 100, low=1)
        result = _diff_data(state, ex.diff(before, after), Links(request), limit)
    data = {
        "version": state.version,
        "before": before,
        "after": after,
        "versions": ex.versions(),
        "diff": result,
    }
    return Page("diff.html", "Diff", data)


def _diff_data(state: ReadState, entry: VersionDiff, links: Links, limit: int) -> dict[str, Any]:
    """A diff as JSON, with links from added and changed keys to those records in the current version."""
    out = entry.as_dict(limit)
    for name, t in out["types"].items():
        key_fields = state[name].schema.primary_key if name in state else ()
        for kind in ("added", "changed"):
            t[f"{kind}_urls"] = [
                links(
                    f"/types/{name}/key",
                    **dict(zip(key_fields, k if len(key_fields) > 1 else [k], strict=True)),
                )
                if key_fields
                else None
                for k in t[f"{kind}_keys"]
            ]
    # a history entry's diff is there even without a blob store: Explorer.diff looks in the history first
    out["url"] = (
        links("/diff", **{"from": entry.before, "to": entry.after}) if entry.before is not None else None
    )
    return out


# --- the app ------------------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
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
    routes: list[Route | Mount] = [Mount("/static", StaticFiles(directory=_HERE / "static"), name="static")]
    for path, handler in pages:
        run = endpoint(handler)
        # the twin first: "{type}" would otherwise match "Title.json"
        routes += [Route(f"{path}.json", run), Route(path, run)]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
