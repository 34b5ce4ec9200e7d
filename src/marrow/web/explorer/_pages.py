"""The explorer's pages: each handler reads one state and returns the data of its page (the JSON twin)
and the template that renders it as HTML; see :mod:`marrow.web.explorer` for the paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import numpy as np
from starlette.requests import Request

from marrow.store.history import VersionDiff
from marrow.store.read import ReadState, TypeReader
from marrow.web._values import RecordsJSON, as_text, parse_value
from marrow.web.explorer._source import Explorer, Problem

__all__ = [
    "MAX_COMPLETIONS",
    "PER_PAGE",
    "Links",
    "Page",
    "complete_page",
    "diff_page",
    "find_page",
    "history_page",
    "key_page",
    "overview",
    "record_page",
    "type_page",
]

PER_PAGE = 50  #: records on one page of a type or of a hash index query
MAX_COMPLETIONS = 500


@dataclass
class Page:
    """What a page handler returns: JSON-able data, and the template that renders it as HTML."""

    template: str
    title: str
    data: dict[str, Any]


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
