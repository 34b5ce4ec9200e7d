"""The impression history HTTP API: tokens, batches with per-event answers, backpressure (429) and
the store going away (503, and reads that say they are stale), reads and their bad parameters."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import msgspec
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from marrow.errors import ConfigError
from marrow.impressions import ImpressionHistory, ImpressionSettings, InMemoryImpressionStore
from marrow.impressions.testing import T0, Clock, Gate, Outage, impression
from marrow.web.impressions import impressions_app

with warnings.catch_warnings():  # Starlette 1.x warns that it prefers httpx2 (see test_explorer.py)
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

NOW = int(T0 * 1000)
TOKEN = {"Authorization": "Bearer s3cret"}
SETTINGS = ImpressionSettings(
    store="memory",
    tokens=("s3cret", "other"),
    buffer_events=10,
    batch_max=5,
    flush_interval_ms=1,
    ack_timeout_s=0.5,
)


@pytest.fixture
def outage() -> Outage:
    return Outage(Gate(InMemoryImpressionStore()))


@pytest.fixture
def service(outage: Outage) -> Iterator[ImpressionHistory]:
    s = ImpressionHistory(SETTINGS, outage, clock=Clock())
    yield s
    outage.down = False
    outage.store.release()  # type: ignore[attr-defined]
    s.close(timeout=1)


@pytest.fixture
def client(service: ImpressionHistory) -> Iterator[TestClient]:
    with TestClient(impressions_app(service)) as c:
        yield c


def batch(*events: object) -> bytes:
    return msgspec.json.encode({"events": list(events)})


def test_every_endpoint_but_metrics_needs_a_token(client: TestClient) -> None:
    for method, path in [("POST", "/events"), ("GET", "/profiles/1/histories?titles=1"), ("GET", "/status")]:
        r = client.request(method, path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json() == {"error": "give a token: Authorization: Bearer <token>", "status": 401}
        wrong = client.request(method, path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "not one this service accepts" in wrong.json()["error"]
    assert client.get("/status", headers={"Authorization": "Bearer other"}).status_code == 200
    assert client.get("/metrics").status_code == 200


def test_the_api_refuses_to_start_without_a_token(service: ImpressionHistory) -> None:
    with pytest.raises(ConfigError, match="needs at least one non-blank token"):
        impressions_app(service, tokens=[])


def test_a_batch_is_answered_event_by_event(client: TestClient) -> None:
    good = msgspec.to_builtins(impression(title=1))
    r = client.post(
        "/events", content=batch(good, {**good, "title": -1}, {**good, "visible_ms": 10}, good), headers=TOKEN
    )
    assert r.status_code == 200
    assert r.json() == {
        "accepted": 2,
        "durable": True,
        "stored": 1,
        "duplicates": 1,
        "rejected": [{"index": 1, "reason": "title: Expected `int` >= 0"}],
        "filtered": [{"index": 2, "reason": "visible_ms 10 is under min_visible_ms 1000"}],
    }


def test_not_waiting_answers_202_once_buffered(client: TestClient) -> None:
    r = client.post("/events?wait=false", content=batch(impression()), headers=TOKEN)
    assert r.status_code == 202 and r.json()["durable"] is False


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/events", b"{", 400, "the body is not a batch"),
        ("/events", b'{"items": []}', 400, "the body is not a batch"),
        ("/events", batch(*[impression(title=t) for t in range(6)]), 400, "at most 5 events"),
        ("/events?wait=maybe", batch(), 400, "wait must be true or false"),
        ("/events", b" " * 20_000, 413, "split the batch"),
    ],
)
def test_a_bad_batch_says_what_was_wrong(
    client: TestClient, path: str, body: bytes, status: int, error: str
) -> None:
    r = client.post(path, content=body, headers=TOKEN)
    assert r.status_code == status and error in r.json()["error"]


def test_a_full_buffer_answers_429_with_retry_after(client: TestClient, outage: Outage) -> None:
    gate = outage.store
    gate.hold()  # type: ignore[attr-defined]
    assert (
        client.post(
            "/events?wait=false", content=batch(*[impression(title=t) for t in range(5)]), headers=TOKEN
        ).status_code
        == 202
    )
    assert gate.waiting.wait(5)  # type: ignore[attr-defined]
    more = batch(*[impression(title=t) for t in range(5, 10)])
    assert client.post("/events?wait=false", content=more, headers=TOKEN).status_code == 202
    r = client.post("/events", content=batch(impression(title=11)), headers=TOKEN)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert "nothing of this batch was taken" in r.json()["error"]


def test_a_store_that_goes_away_answers_503_and_reads_say_they_are_stale(
    client: TestClient, service: ImpressionHistory, outage: Outage
) -> None:
    assert client.post("/events", content=batch(impression(title=1)), headers=TOKEN).status_code == 200
    assert client.get("/profiles/1/histories?titles=1", headers=TOKEN).json()["source"] == "store"
    outage.down = True
    r = client.post("/events", content=batch(impression(title=2)), headers=TOKEN)
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert "resending them is safe" in r.json()["error"]
    refused = client.post("/events", content=batch(impression(title=3)), headers=TOKEN)
    assert refused.status_code == 503 and "not being taken" in refused.json()["error"]
    service.clock.advance(3600)  # type: ignore[attr-defined]
    stale = client.get("/profiles/1/histories?titles=1", headers=TOKEN).json()
    assert (stale["source"], stale["stale"]) == ("node", True)
    assert stale["histories"]["1"]["count_1d"] == 1 and "the store cannot be read" in stale["note"]
    r = client.get("/profiles/2/histories?titles=1", headers=TOKEN)
    assert r.status_code == 503 and "not cached" in r.json()["error"]
    assert client.get("/status", headers=TOKEN).json()["store"]["available"] is False


def test_histories_and_sequence(client: TestClient) -> None:
    client.post(
        "/events", content=batch(impression(title=1), impression(title=2, timestamp=NOW + 5)), headers=TOKEN
    )
    r = client.get("/profiles/1/histories?titles=1,3", headers=TOKEN)
    assert r.json() == {
        "profile": 1,
        "histories": {
            "1": {"count_1d": 1, "count_7d": 1, "count_30d": 1, "last_seen": NOW, "recent": [NOW]},
            "3": {"count_1d": 0, "count_7d": 0, "count_30d": 0, "last_seen": None, "recent": []},
        },
        "source": "store",
        "stale": False,
        "note": None,
    }
    seq = client.get("/profiles/1/sequence?limit=1", headers=TOKEN).json()
    assert (seq["source"], seq["shown"]) == ("node", [{"timestamp": NOW + 5, "title": 2}])


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/profiles/x/histories?titles=1", "a profile is a non-negative integer id, not 'x'"),
        ("/profiles/1/histories", "give titles"),
        ("/profiles/1/histories?titles=1,a", "'a' is not"),
        ("/profiles/1/histories?titles=" + ",".join(["1"] * 2001), "at most 2000 titles"),
        ("/profiles/1/sequence?limit=0", "limit must be an integer from 1 to 1000"),
    ],
)
def test_bad_read_parameters_say_what_was_wrong(client: TestClient, path: str, error: str) -> None:
    r = client.get(path, headers=TOKEN)
    assert r.status_code == 400 and error in r.json()["error"]


def test_status_and_metrics(client: TestClient) -> None:
    client.post("/events", content=batch(impression()), headers=TOKEN)
    status = client.get("/status", headers=TOKEN).json()
    assert status["metrics"]["events"]["stored"] == 1
    assert status["settings"]["tokens"] == ["…", "…"]
    text = client.get("/metrics").text
    assert 'marrow_impressions_events_total{outcome="stored"} 1.0' in text


def test_an_unknown_path_is_a_json_404(client: TestClient) -> None:
    r = client.get("/nope", headers=TOKEN)
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]
