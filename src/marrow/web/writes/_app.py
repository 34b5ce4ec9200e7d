"""The write API's HTTP app over a writer and a local client; see :mod:`marrow.web.writes`."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Collection, Mapping
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marrow.errors import (
    ConflictError,
    LeaseError,
    LogError,
    MarrowError,
    NotFoundError,
    ReadTimeoutError,
    RecordError,
    SchemaError,
    WriteError,
)
from marrow.raw import Delete, Expect, LocalClient, Upsert, View, Writer
from marrow.store import Schema
from marrow.store.schema import FieldType
from marrow.web.writes._contract import (
    BulkUpdateBody,
    Conflict,
    ErrorAnswer,
    LookupAnswer,
    LookupBody,
    OffsetAnswer,
    RecordAnswer,
    UpsertOp,
    openapi_document,
)

__all__ = ["from_json", "writes_app"]


class _Problem(Exception):
    def __init__(self, status: int, message: str, conflicts: list[Conflict] | None = None):
        super().__init__(message)
        self.status, self.message, self.conflicts = status, message, conflicts


def _json(value: Any, status: int = 200, offset: int | None = None) -> Response:
    headers = {"X-Marrow-Offset": str(offset)} if offset is not None else None
    return Response(msgspec.json.encode(value), status, headers, media_type="application/json")


# --- JSON values to field values --------------------------------------------------------------------


def from_json(schema: Schema, type: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON object as a record of ``type``: base64 bytes decoded, map keys typed, references
    followed. Everything else is left for the writer's validation."""
    try:
        t = schema[type]
    except NotFoundError as e:
        raise _Problem(422, str(e)) from None
    out = dict(record)
    for f in t.fields:
        value = out.get(f.name)
        if value is not None:
            out[f.name] = _value(schema, f.type, value, f"{type}.{f.name}")
    return out


def _value(schema: Schema, ftype: FieldType, value: Any, where: str) -> Any:
    kind = ftype.kind
    if kind in ("list", "set") and isinstance(value, list):
        assert ftype.element is not None
        element = ftype.element
        return [_value(schema, element, v, where) for v in value]
    if kind == "map" and isinstance(value, dict):
        assert ftype.element is not None and ftype.value is not None
        key_type, value_type = ftype.element, ftype.value
        return {_key(key_type, k, where): _value(schema, value_type, v, where) for k, v in value.items()}
    if kind == "bytes" and isinstance(value, str):
        return _bytes(value, where)
    if kind == "ref" and isinstance(value, dict):
        return from_json(schema, str(ftype.target), value)
    return value


def _key(ftype: FieldType, key: str, where: str) -> Any:
    if ftype.kind in ("int", "long"):
        try:
            return int(key)
        except ValueError:
            raise _Problem(422, f"the keys of {where} are integers; {key!r} is not one") from None
    return _bytes(key, where) if ftype.kind == "bytes" else key


def _bytes(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise _Problem(422, f"{where} is bytes: give them base64-encoded, not {value[:40]!r}") from None


def _url_key(schema: Schema, type: str, raw: str) -> Any:
    """A primary key written in a URL: an integer field's value parsed, a string's as is."""
    try:
        t = schema[type]
    except NotFoundError as e:
        raise _Problem(404, str(e)) from None
    if len(t.primary_key) != 1:
        raise _Problem(
            422, f"the primary key of {type} has several fields; read it with POST /v1/records/{type}/lookup"
        )
    if t.field(t.primary_key[0]).type.kind in ("int", "long"):
        try:
            return int(raw)
        except ValueError:
            raise _Problem(
                422, f"the primary key {type}.{t.primary_key[0]} is an integer, not {raw!r}"
            ) from None
    return raw


def _key_value(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def _plain(record: Any) -> dict[str, Any] | None:
    return None if record is None else record.to_dict(depth=8)


# --- the app -----------------------------------------------------------------------------------------


def writes_app(
    writer: Writer | None,
    client: LocalClient,
    *,
    tokens: Collection[str],
    latest: Callable[[], int] | None = None,
) -> Starlette:
    """The API over ``writer`` (None: a read-only replica answers writes with 503) and ``client``."""
    if not tokens or any(not t for t in tokens):
        raise ValueError(
            "the write API needs at least one non-empty token (tokens in [writes], or MARROW_WRITES_TOKENS)"
        )
    schema = client.schema
    secrets = [t.encode() for t in tokens]
    last_offset = latest or (lambda: writer.offset if writer is not None else client.latest())

    def authorised(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.encode(), s) for s in secrets):
            raise _Problem(401, "send Authorization: Bearer <token> with a token this service accepts")

    def view_for(consistency: str, offset: int | None) -> View:
        if consistency not in ("eventual", "strong"):
            raise _Problem(422, f"consistency is 'eventual' or 'strong', not {consistency!r}")
        return client.view(consistency, offset=offset)  # type: ignore[arg-type]

    async def bulk_update(request: Request) -> Response:
        authorised(request)
        try:
            body = msgspec.json.decode(await request.body(), type=BulkUpdateBody)
        except msgspec.ValidationError as e:
            raise _Problem(422, f"the bulk update does not fit its schema: {e}") from None
        except msgspec.DecodeError as e:
            raise _Problem(422, f"the body is not JSON: {e}") from None
        if writer is None:
            raise _Problem(503, "this service reads only; send writes to the namespace's writer")
        ops: list[Upsert | Delete] = [
            Upsert(from_json(schema, op.type, op.record), type=op.type)
            if isinstance(op, UpsertOp)
            else Delete(op.type, _key_value(op.key))
            for op in body.ops
        ]
        expect = [
            Expect(
                e.type,
                _key_value(e.key),
                e.present,
                from_json(schema, e.type, e.fields) if e.fields is not None else None,
                e.version,
            )
            for e in body.expect
        ]
        offset = await run_in_threadpool(writer.bulk_update, ops, expect=expect, request_id=body.request_id)
        return _json(OffsetAnswer(offset), offset=offset)

    def read_record(request: Request) -> Response:
        authorised(request)
        type = request.path_params["type"]
        key = _url_key(schema, type, request.path_params["key"])
        offset = request.query_params.get("offset")
        try:
            at = int(offset) if offset is not None else None
        except ValueError:
            raise _Problem(422, f"offset is an integer, not {offset!r}") from None
        view = view_for(request.query_params.get("consistency", "eventual"), at)
        record = view[type].get(key)
        if record is None:
            raise _Problem(404, f"no {type} with primary key {key!r} (at offset {view.offset})")
        return _json(RecordAnswer(_plain(record) or {}, view.offset, view.version), offset=view.offset)

    async def lookup(request: Request) -> Response:
        authorised(request)
        try:
            body = msgspec.json.decode(await request.body(), type=LookupBody)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise _Problem(422, f"the lookup does not fit its schema: {e}") from None
        type = request.path_params["type"]
        if type not in schema:
            raise _Problem(404, f"no type {type!r}; types: {list(schema)}")
        view = await run_in_threadpool(view_for, body.consistency, body.offset)
        records = view[type].lookup([_key_value(k) for k in body.keys])
        if body.fields is not None:
            known = schema[type].field_names
            unknown = [f for f in body.fields if f not in known]
            if unknown:
                raise _Problem(422, f"{type} has no field {unknown[0]!r}; its fields are {known}")
            shown = [None if r is None else {f: r.to_dict(depth=8)[f] for f in body.fields} for r in records]
        else:
            shown = [_plain(r) for r in records]
        return _json(LookupAnswer(shown, view.offset, view.version), offset=view.offset)

    def offset(request: Request) -> Response:
        authorised(request)
        latest_offset = last_offset()
        return _json(OffsetAnswer(latest_offset), offset=latest_offset)

    def openapi(request: Request) -> Response:
        return _json(openapi_document())

    def fail(status: int, message: str, conflicts: list[Conflict] | None = None) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        body = msgspec.json.encode(ErrorAnswer(message, status, conflicts))
        return Response(body, status, headers, media_type="application/json")

    async def problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Problem)
        return fail(exc.status, exc.message, exc.conflicts)

    async def marrow_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ConflictError):
            conflicts = [Conflict(t, k, want, got) for t, k, want, got in exc.conflicts]
            return fail(409, str(exc), conflicts)
        if isinstance(exc, RecordError | SchemaError):
            return fail(422, str(exc))
        if isinstance(exc, NotFoundError):
            return fail(404, str(exc))
        if isinstance(exc, ReadTimeoutError):
            return fail(504, str(exc))
        if isinstance(exc, LogError | LeaseError | WriteError):
            return fail(503, f"{exc} (retry with the same request id: it applies at most once)")
        return fail(500, str(exc))

    routes = [
        Route("/v1/bulk-update", bulk_update, methods=["POST"]),
        Route("/v1/records/{type}/lookup", lookup, methods=["POST"]),
        Route("/v1/records/{type}/{key}", read_record, methods=["GET"]),
        Route("/v1/offset", offset, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={_Problem: problem, MarrowError: marrow_error})
