"""The write API's contract: the request bodies and answers as msgspec types, and the OpenAPI 3.1
document made from them (so that the document cannot drift from what the app decodes and encodes)."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "BulkUpdateBody",
    "Conflict",
    "DeleteOp",
    "ErrorAnswer",
    "ExpectBody",
    "LookupAnswer",
    "LookupBody",
    "OffsetAnswer",
    "RecordAnswer",
    "UpsertOp",
    "openapi_document",
]


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
