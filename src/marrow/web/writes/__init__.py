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

The package: the HTTP app (``_app``), the API's contract — request and answer types and the OpenAPI
document made from them (``_contract``) — and how ``marrow serve-writes`` is configured (``_settings``).
"""

from marrow.web.writes._app import writes_app
from marrow.web.writes._contract import BulkUpdateBody, openapi_document
from marrow.web.writes._settings import WritesSettings

__all__ = ["BulkUpdateBody", "WritesSettings", "openapi_document", "writes_app"]
