"""The write API over HTTP: authentication, bulk and conditional updates, reads, errors, OpenAPI."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from marrow import store
from marrow.errors import ConfigError
from marrow.raw import InMemoryLease, InMemoryWriteLog, LocalClient, Writer
from marrow.records import Collection, Story, Title
from marrow.settings import load_settings
from marrow.store.memory import InMemoryBlobStore
from marrow.web.writes import WritesSettings, openapi_document, writes_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

SCHEMA = store.Schema.from_classes(Title, Story, Collection)
AUTH = {"Authorization": "Bearer s3cret"}


def title_json(id: int, name: str = "Dark") -> dict[str, object]:
    return {
        "id": id,
        "slug": f"t-{id}",
        "name": name,
        "kind": "show",
        "synopsis": "s",
        "year": 2017,
        "maturity": 16,
        "runtime": 50,
        "genres": ["drama"],
        "cast": ["Louis Hofmann"],
        "countries": ["DE"],
        "popularity": 7,
        "added": 1,
        "artwork": {"web": "https://cdn/x.jpg"},
    }


@dataclass(frozen=True)
class Blob:
    __primary_key__ = "id"
    id: int
    data: bytes
    sizes: dict[int, str]


@pytest.fixture
def http() -> Iterator[TestClient]:
    log = InMemoryWriteLog()
    writer = Writer(SCHEMA, log, InMemoryLease().holder())
    writer.start()
    client = LocalClient(SCHEMA, store.Consumer(InMemoryBlobStore()), log).start()
    with TestClient(writes_app(writer, client, tokens=["s3cret"])) as c:
        yield c


def test_an_unauthenticated_write_is_refused_and_changes_nothing(http: TestClient) -> None:
    body = {"ops": [{"op": "upsert", "type": "Title", "record": title_json(1)}]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        answer = http.post("/v1/bulk-update", json=body, headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert "Bearer <token>" in answer.json()["error"]
    assert http.get("/v1/offset", headers=AUTH).json() == {"offset": 1}  # only the writer's fence
    assert http.get("/v1/records/Title/1").status_code == 401


def test_write_then_read_your_write_with_the_offset_token(http: TestClient) -> None:
    answer = http.post(
        "/v1/bulk-update",
        json={"ops": [{"op": "upsert", "type": "Title", "record": title_json(1)}], "request_id": "r-1"},
        headers=AUTH,
    )
    assert answer.status_code == 200
    offset = answer.json()["offset"]
    assert answer.headers["x-marrow-offset"] == str(offset)
    read = http.get(f"/v1/records/Title/1?offset={offset}", headers=AUTH)
    assert read.status_code == 200
    assert read.json()["record"]["name"] == "Dark" and read.json()["offset"] >= offset
    assert http.get("/v1/records/Title/1?consistency=strong", headers=AUTH).json()["record"]["countries"] == [
        "DE"
    ]
    again = http.post(
        "/v1/bulk-update",
        json={"ops": [{"op": "upsert", "type": "Title", "record": title_json(1)}], "request_id": "r-1"},
        headers=AUTH,
    )
    assert again.json()["offset"] == offset  # retried: applied once
    assert http.get("/v1/offset", headers=AUTH).json()["offset"] == offset


def test_a_conditional_update_that_fails_is_a_409_naming_the_keys(http: TestClient) -> None:
    http.post(
        "/v1/bulk-update",
        json={"ops": [{"op": "upsert", "type": "Title", "record": title_json(1)}]},
        headers=AUTH,
    )
    answer = http.post(
        "/v1/bulk-update",
        json={
            "ops": [{"op": "delete", "type": "Title", "key": 1}],
            "expect": [
                {"type": "Title", "key": 1, "fields": {"name": "Ozark"}},
                {"type": "Title", "key": 2, "present": True},
            ],
        },
        headers=AUTH,
    )
    assert answer.status_code == 409
    assert [(c["type"], c["key"]) for c in answer.json()["conflicts"]] == [("Title", 1), ("Title", 2)]
    assert http.get("/v1/records/Title/1?consistency=strong", headers=AUTH).status_code == 200
    ok = http.post(
        "/v1/bulk-update",
        json={
            "ops": [{"op": "delete", "type": "Title", "key": 1}],
            "expect": [{"type": "Title", "key": 1, "fields": {"name": "Dark"}}],
        },
        headers=AUTH,
    )
    assert ok.status_code == 200
    assert http.get("/v1/records/Title/1?consistency=strong", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        ({"ops": [{"op": "merge", "type": "Title"}]}, "fit its schema"),
        ({"ops": [], "extra": 1}, "fit its schema"),
        ({"ops": [{"op": "upsert", "type": "Nope", "record": {}}]}, "no type 'Nope'"),
        (
            {"ops": [{"op": "upsert", "type": "Title", "record": {**title_json(1), "year": "x"}}]},
            "Title.year",
        ),
        (
            {"ops": [{"op": "upsert", "type": "Title", "record": {"id": 1, "colour": "red"}}]},
            "no field 'colour'",
        ),
        ({"ops": [{"op": "delete", "type": "Title", "key": "one"}]}, "Title.id is a long"),
    ],
)
def test_a_bad_body_is_a_422_saying_what_was_wrong(http: TestClient, body: object, message: str) -> None:
    if isinstance(body, bytes):
        answer = http.post("/v1/bulk-update", content=body, headers=AUTH)
    else:
        answer = http.post("/v1/bulk-update", json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error"] and answer.json()["status"] == 422


def test_lookup_reads_many_keys_and_chosen_fields(http: TestClient) -> None:
    ops = [{"op": "upsert", "type": "Title", "record": title_json(i, f"T{i}")} for i in (1, 2)]
    offset = http.post("/v1/bulk-update", json={"ops": ops}, headers=AUTH).json()["offset"]
    answer = http.post(
        "/v1/records/Title/lookup",
        json={"keys": [2, 3, 1], "fields": ["name"], "offset": offset},
        headers=AUTH,
    )
    assert answer.json()["records"] == [{"name": "T2"}, None, {"name": "T1"}]
    assert (
        http.post(
            "/v1/records/Title/lookup", json={"keys": [1], "fields": ["nope"]}, headers=AUTH
        ).status_code
        == 422
    )
    assert http.post("/v1/records/Nope/lookup", json={"keys": [1]}, headers=AUTH).status_code == 404


def test_reads_explain_bad_keys_and_timeouts(http: TestClient) -> None:
    assert http.get("/v1/records/Title/abc", headers=AUTH).status_code == 422
    assert http.get("/v1/records/Nope/1", headers=AUTH).status_code == 404
    assert http.get("/v1/records/Title/1?consistency=maybe", headers=AUTH).status_code == 422
    slow = http.get("/v1/records/Title/1?offset=1000000", headers=AUTH)
    assert slow.status_code == 504 and "waits for offset 1000000" in slow.json()["error"]


def test_bytes_and_integer_map_keys_travel_as_json() -> None:
    schema = store.Schema.from_classes(Blob)
    log = InMemoryWriteLog()
    writer = Writer(schema, log, InMemoryLease().holder())
    writer.start()
    client = LocalClient(schema, store.Consumer(InMemoryBlobStore()), log).start()
    with TestClient(writes_app(writer, client, tokens=["s3cret"])) as http:
        record = {"id": 1, "data": base64.b64encode(b"\x00\xff").decode(), "sizes": {"480": "small"}}
        assert (
            http.post(
                "/v1/bulk-update",
                json={"ops": [{"op": "upsert", "type": "Blob", "record": record}]},
                headers=AUTH,
            ).status_code
            == 200
        )
        assert writer.view()["Blob"].get(1).data == b"\x00\xff" and writer.view()["Blob"].get(1).sizes == {
            480: "small"
        }
        assert (
            http.get("/v1/records/Blob/1?consistency=strong", headers=AUTH).json()["record"]["data"] == "AP8="
        )
        bad = {"id": 2, "data": "not base64!", "sizes": {}}
        answer = http.post(
            "/v1/bulk-update", json={"ops": [{"op": "upsert", "type": "Blob", "record": bad}]}, headers=AUTH
        )
        assert answer.status_code == 422 and "base64" in answer.json()["error"]


def test_a_read_only_replica_refuses_writes_with_503() -> None:
    log = InMemoryWriteLog()
    client = LocalClient(SCHEMA, store.Consumer(InMemoryBlobStore()), log).start()
    with TestClient(writes_app(None, client, tokens=["s3cret"])) as http:
        body = {"ops": [{"op": "upsert", "type": "Title", "record": title_json(1)}]}
        assert http.post("/v1/bulk-update", json=body, headers=AUTH).status_code == 503


def test_the_app_needs_a_token() -> None:
    client = LocalClient(SCHEMA, store.Consumer(InMemoryBlobStore()), InMemoryWriteLog())
    with pytest.raises(ValueError, match="token"):
        writes_app(None, client, tokens=[])


def test_the_openapi_document_describes_every_route(http: TestClient) -> None:
    document = http.get("/openapi.json").json()
    assert document == openapi_document()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/v1/bulk-update",
        "/v1/records/{type}/{key}",
        "/v1/records/{type}/lookup",
        "/v1/offset",
    }
    assert {"BulkUpdateBody", "UpsertOp", "DeleteOp", "ExpectBody", "ErrorAnswer"} <= set(
        document["components"]["schemas"]
    )


def load(config: Path, environ: dict[str, str], **given: object) -> WritesSettings:
    return load_settings(WritesSettings, "writes", config, environ, given=given)


def test_settings_come_from_toml_the_environment_and_the_arguments(tmp_path: Path) -> None:
    config = tmp_path / "writes.toml"
    config.write_text('[writes]\nroot = "var/content"\nport = 9000\ntokens = ["from-file"]\n')
    settings = load(config, {"MARROW_WRITES_TOKENS": "a, b", "MARROW_WRITES_FOLD_ENTRIES": "50"})
    assert (settings.root, settings.port, settings.tokens) == ("var/content", 9000, ("a", "b"))
    assert settings.fold_entries == 50
    assert set(settings.classes()) == {"Title", "Story", "Collection", "Layout"}
    assert load(config, {"MARROW_WRITES_ROOT": "elsewhere"}, root="given", port=None).root == "given"


@pytest.mark.parametrize(
    ("text", "environ", "message"),
    [
        ('root = "x"\n', {}, "at least one non-blank token"),
        ('root = "x"\n', {"MARROW_WRITES_TOKENS": " , "}, "at least one non-blank token"),
        ("", {"MARROW_WRITES_TOKENS": "t"}, "missing required field `root`"),
        ('root = "x"\nport = "high"\n', {"MARROW_WRITES_TOKENS": "t"}, r"writes\.port \(from \[writes\] in"),
        ('root = "x"\n', {"MARROW_WRITES_TOKENS": "t", "MARROW_WRITES_PORT": "70000"}, "<= 65535"),
        ('root = "x"\nfold_interval = 0\n', {"MARROW_WRITES_TOKENS": "t"}, r"fold_interval .*> 0"),
        ('root = "x"\nschema = "records"\n', {"MARROW_WRITES_TOKENS": "t"}, "module:attribute"),
        ('root = "x"\ncolour = 1\n', {"MARROW_WRITES_TOKENS": "t"}, "'colour' is no setting"),
        ('root = "x"\n', {"MARROW_WRITES_TOKEN": "t"}, "MARROW_WRITES_TOKEN names no writes setting"),
        ("root = \n", {}, "not valid TOML"),
    ],
)
def test_bad_settings_say_what_is_wrong(
    tmp_path: Path, text: str, environ: dict[str, str], message: str
) -> None:
    config = tmp_path / "writes.toml"
    config.write_text("[writes]\n" + text)
    with pytest.raises(ConfigError, match=message):
        load(config, environ)


def test_schema_classes_that_cannot_be_imported_are_a_config_error() -> None:
    settings = WritesSettings(root="x", tokens=("t",), schema="marrow.nowhere:TYPES")
    with pytest.raises(ConfigError, match=r"cannot load the schema classes 'marrow\.nowhere:TYPES'"):
        settings.classes()
