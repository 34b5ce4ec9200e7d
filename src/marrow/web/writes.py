"""The write API of a namespace over HTTP: bulk updates, conditional updates, reads, the latest offset.

    POST /v1/bulk-update               {"ops": [...], "expect": [...], "request_id": "..."} → {"offset": N}
    GET  /v1/records/{type}/{key}      one record; ?consistency=strong, or ?offset=N (read your write)
    POST /v1/records/{type}/lookup     {"keys": [...], "fields": [...]?, "consistency"?, "offset"?}
    GET  /v1/offset                    {"offset": the latest acknowledged offset}
    GET  /openapi.json                 this API as an OpenAPI 3.1 document (no token needed)

Every ``/v1`` request needs ``Authorization: Bearer <token>`` with one of the configured tokens; a
request without one is refused with 401 before anything is read or written. Errors are JSON,
``{"error": what was wrong and what to do, "status": code}``: 422 for a body or value that does not
fit (also a record the schema refuses), 409 for a conditional update whose expectations failed (with
``conflicts``), 404 for no such record, 503 when the write log or lease is unavailable (retry with the
same request id), 504 when a strong read cannot catch up in time.

JSON values take their field's type: bytes are base64, a map with integer keys has them as strings
(``{"7": ...}``), a primary key of several fields is a list, and in a URL a key of one integer or
string field is written as is.
"""

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

__all__ = ["BulkUpdateBody", "WritesSettings", "openapi_document", "writes_app"]


class UpsertOp(msgspec.Struct, tag="upsert", tag_field="op", forbid_unknown_fields=True):
    """Add a record, or replace the one with its primary key."""

    type: str
    record: dict[str, Any]


class DeleteOp(msgspec.Struct, tag="delete", tag_field="op", forbid_unknown_fields=True):
    """Remove the record with this primary key (a list for a key of several fields)."""

    type: str
    key: Any


class ExpectBody(msgspec.Struct, forbid_unknown_fields=True):
    """An expectation about the current record: present (true/false), field values, or unchanged
    since an offset (``version``)."""

    type: str
    key: Any
    present: bool | None = None
    fields: dict[str, Any] | None = None
    version: int | None = None


class BulkUpdateBody(msgspec.Struct, forbid_unknown_fields=True):
    """An atomic bulk update; with ``expect``, a conditional one."""

    ops: list[UpsertOp | DeleteOp]
    expect: list[ExpectBody] = []
    request_id: str | None = None


class LookupBody(msgspec.Struct, forbid_unknown_fields=True):
    keys: list[Any]
    fields: list[str] | None = None
    consistency: str = "eventual"
    offset: int | None = None


class OffsetAnswer(msgspec.Struct):
    offset: int


class RecordAnswer(msgspec.Struct):
    record: dict[str, Any]
    offset: int
    version: int | None


class LookupAnswer(msgspec.Struct):
    records: list[dict[str, Any] | None]
    offset: int
    version: int | None


class Conflict(msgspec.Struct):
    type: str
    key: Any
    expected: str
    found: str


class ErrorAnswer(msgspec.Struct):
    error: str
    status: int
    conflicts: list[Conflict] | None = None


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
        raise ValueError("the write API needs at least one non-empty token (MARROW_TOKENS)")
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


def openapi_document() -> dict[str, Any]:
    """The API as an OpenAPI 3.1 document; request and answer schemas come from the msgspec types."""
    (body, lookup_body, offset_answer, record_answer, lookup_answer, error), components = (
        msgspec.json.schema_components(
            [BulkUpdateBody, LookupBody, OffsetAnswer, RecordAnswer, LookupAnswer, ErrorAnswer],
            ref_template="#/components/schemas/{name}",
        )
    )

    def answer(schema: dict[str, Any], what: str) -> dict[str, Any]:
        return {"description": what, "content": {"application/json": {"schema": schema}}}

    errors = {
        str(code): answer(error, what)
        for code, what in [
            (401, "no valid bearer token"),
            (404, "no such type or record"),
            (409, "a conditional update's expectations failed; nothing was applied"),
            (422, "the body or a value does not fit; nothing was applied"),
            (503, "the write log or lease is unavailable; retry with the same request id"),
            (504, "a strong read could not catch up in time"),
        ]
    }
    read_params = [
        {"name": "consistency", "in": "query", "schema": {"enum": ["eventual", "strong"]}},
        {"name": "offset", "in": "query", "schema": {"type": "integer"}, "description": "read your write"},
    ]
    path_params = [
        {"name": "type", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Marrow write API", "version": "1"},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/bulk-update": {
                "post": {
                    "summary": "Apply a bulk update (conditional with expect); its offset once durable",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                    "responses": {"200": answer(offset_answer, "the offset of the write"), **errors},
                }
            },
            "/v1/records/{type}/{key}": {
                "get": {
                    "summary": "One record by primary key",
                    "parameters": path_params + read_params,
                    "responses": {"200": answer(record_answer, "the record"), **errors},
                }
            },
            "/v1/records/{type}/lookup": {
                "post": {
                    "summary": "Records (or chosen fields) for many primary keys; null where absent",
                    "parameters": path_params[:1],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": lookup_body}},
                    },
                    "responses": {"200": answer(lookup_answer, "the records, in key order"), **errors},
                }
            },
            "/v1/offset": {
                "get": {
                    "summary": "The latest acknowledged offset (a token for strong reads elsewhere)",
                    "responses": {"200": answer(offset_answer, "the offset"), **errors},
                }
            },
        },
    }


# --- settings ---------------------------------------------------------------------------------------


class WritesSettings(msgspec.Struct, forbid_unknown_fields=True):
    """How ``marrow serve-writes`` runs: read from a TOML file, then ``MARROW_*`` environment variables.

    ``MARROW_TOKENS`` (comma-separated) overrides ``tokens``; ``MARROW_ROOT`` overrides ``root``.
    """

    root: str
    schema: str = "marrow.records:TYPES"  #: ``module:attribute`` naming the namespace's classes
    host: str = "127.0.0.1"
    port: int = 8791
    tokens: list[str] = []
    fold_interval: float = 30.0
    fold_entries: int = 10_000

    @classmethod
    def load(
        cls, path: str | None = None, environ: Mapping[str, str] | None = None, **given: Any
    ) -> WritesSettings:
        """Settings from ``path`` (TOML), the environment and ``given`` values, validated."""
        import os
        import tomllib

        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        if path is not None:
            try:
                with open(path, "rb") as f:
                    data = tomllib.load(f)
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise SchemaError(f"cannot read the settings in {path}: {e}") from e
        if env.get("MARROW_TOKENS"):
            data["tokens"] = [t.strip() for t in env["MARROW_TOKENS"].split(",") if t.strip()]
        if env.get("MARROW_ROOT"):
            data["root"] = env["MARROW_ROOT"]
        data.update({k: v for k, v in given.items() if v is not None})
        try:
            settings = msgspec.convert(data, cls)
        except msgspec.ValidationError as e:
            raise SchemaError(f"the write service settings are invalid: {e}") from None
        settings.check()
        return settings

    def check(self) -> None:
        if not self.tokens:
            raise SchemaError(
                "the write service needs at least one token: set MARROW_TOKENS or tokens = [...]"
            )
        if not 0 <= self.port <= 65535:
            raise SchemaError(f"port must be 0..65535, not {self.port}")
        if self.fold_interval <= 0 or self.fold_entries <= 0:
            raise SchemaError("fold_interval and fold_entries must be positive")
        if ":" not in self.schema:
            raise SchemaError(
                f"schema is 'module:attribute' (e.g. marrow.records:TYPES), not {self.schema!r}"
            )

    def classes(self) -> Schema:
        """The namespace's schema, from the classes ``schema`` names."""
        import importlib

        module, _, attribute = self.schema.partition(":")
        try:
            value = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as e:
            raise SchemaError(f"cannot load the schema classes {self.schema!r}: {e}") from None
        return Schema.from_classes(*(value if isinstance(value, list | tuple) else [value]))
