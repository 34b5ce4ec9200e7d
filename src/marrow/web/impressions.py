"""The impression history HTTP API: a thin shell over :class:`~marrow.impressions.ImpressionHistory`.

    POST /events                          a batch {"events": [...]}; answers once it is stored (200),
                                          or once buffered with ?wait=false (202)
    GET  /profiles/{profile}/histories    ?titles=1,2,3 — counts over 1, 7 and 30 days, last seen and
                                          recent timestamps, per title, and where the answer came from
    GET  /profiles/{profile}/sequence     ?limit=20 — the latest impressions, newest first
    GET  /status                          metrics, rollout and shadow results, the store's state
    GET  /metrics                         the same figures for Prometheus (no token: scrapers rarely
                                          carry one, and the figures hold no member data)

Every other path needs ``Authorization: Bearer <token>`` with one of the configured tokens (401
otherwise). Answers are JSON; an error is ``{"error": ..., "status": ...}`` saying what was wrong and
what to do: 400 a bad body or parameter, 413 a body too large, 429 the buffer is full and 503 the
store cannot be reached — both with ``Retry-After`` (seconds), and neither takes any of the batch, so
resending it is right (events are idempotent by their dedup key). Within a batch that was taken, the
answer lists each event rejected or filtered, with its index and the reason.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marrow.errors import BufferFullError, ConfigError, InvalidEventError, StoreUnavailableError
from marrow.impressions import ImpressionHistory

__all__ = ["MAX_TITLES", "impressions_app"]

MAX_TITLES = 2000  #: titles one history request may ask for
MAX_SEQUENCE = 1000
_EVENT_BYTES = 2048  # generous size of one event in JSON, to bound a body before reading it whole
_encode = msgspec.json.Encoder().encode


class Problem(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(data), status_code=status, media_type="application/json", headers=headers)


def _profile(request: Request) -> int:
    text = request.path_params["profile"]
    if not text.isdigit() or int(text) >= 2**63:
        raise Problem(400, f"a profile is a non-negative integer id, not {text!r}")
    return int(text)


def _titles(request: Request) -> list[int]:
    text = request.query_params.get("titles", "")
    if not text.strip():
        raise Problem(400, "give titles: the title ids to look up, comma-separated (?titles=1,2,3)")
    parts = text.split(",")
    if len(parts) > MAX_TITLES:
        raise Problem(400, f"ask for at most {MAX_TITLES} titles at once, not {len(parts)}")
    bad = [p for p in parts if not p.strip().isdigit()]
    if bad:
        raise Problem(400, f"titles must be non-negative integer ids; {bad[0]!r} is not")
    return [int(p) for p in parts]


def _limit(request: Request) -> int:
    text = request.query_params.get("limit", "20")
    if not text.isdigit() or not 1 <= int(text) <= MAX_SEQUENCE:
        raise Problem(400, f"limit must be an integer from 1 to {MAX_SEQUENCE}, not {text!r}")
    return int(text)


def impressions_app(service: ImpressionHistory, tokens: Sequence[str] | None = None) -> Starlette:
    """The API over ``service``, accepting ``tokens`` (the service's settings' tokens by default)."""
    accepted = [t.encode() for t in (service.settings.tokens if tokens is None else tokens)]
    if not accepted or any(not t.strip() for t in accepted):
        raise ConfigError(
            "the impressions API needs at least one non-blank token: set tokens in [impressions] "
            "or MARROW_IMPRESSIONS_TOKENS (comma-separated)"
        )
    body_limit = service.settings.batch_max * _EVENT_BYTES + 1024

    def authorised(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise Problem(401, "give a token: Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
        # compare with every token, so the time taken does not say which one nearly matched
        if not any([hmac.compare_digest(given.encode(), t) for t in accepted]):
            raise Problem(401, "the token is not one this service accepts", {"WWW-Authenticate": "Bearer"})

    async def events(request: Request) -> Response:
        wait = request.query_params.get("wait", "true")
        if wait not in ("true", "false"):
            raise Problem(400, f"wait must be true or false, not {wait!r}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit:
            raise Problem(413, f"a batch body is at most {body_limit} bytes; split the batch")
        body = await request.body()
        if len(body) > body_limit:
            raise Problem(413, f"a batch body is at most {body_limit} bytes; split the batch")
        receipt = await run_in_threadpool(service.submit_json, body, wait == "true")
        return _json(receipt, 200 if receipt.durable else 202)

    # reads may wait on the store: they run in the thread pool, as ingest does
    async def histories(request: Request) -> Response:
        return _json(await run_in_threadpool(service.read, _profile(request), _titles(request)))

    async def sequence(request: Request) -> Response:
        answer = await run_in_threadpool(service.sequence, _profile(request), _limit(request))
        data = msgspec.structs.asdict(answer)
        data["shown"] = [{"timestamp": s.timestamp, "title": s.title} for s in answer.shown]
        return _json(data)

    async def status(request: Request) -> Response:
        return _json(service.status())

    async def metrics(request: Request) -> Response:
        return Response(service.metrics.exposition(), media_type="text/plain; version=0.0.4")

    def guarded(
        handler: Callable[[Request], Awaitable[Response]], token: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                if token:
                    authorised(request)
                return await handler(request)
            except Problem as e:
                return _problem(e.status, e.message, e.headers)
            except InvalidEventError as e:
                return _problem(400, str(e))
            except BufferFullError as e:
                return _problem(429, str(e), {"Retry-After": str(e.retry_after)})
            except StoreUnavailableError as e:
                return _problem(503, str(e), {"Retry-After": str(e.retry_after)})

        return run

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code in (404, 405):
            message = f"no such endpoint: {request.method} {request.url.path}; see GET /status"
        else:
            message = str(exc.detail)
        return _problem(exc.status_code, message)

    routes = [
        Route("/events", guarded(events), methods=["POST"]),
        Route("/profiles/{profile}/histories", guarded(histories), methods=["GET"]),
        Route("/profiles/{profile}/sequence", guarded(sequence), methods=["GET"]),
        Route("/status", guarded(status), methods=["GET"]),
        Route("/metrics", guarded(metrics, token=False), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": message, "status": status}, status, headers)
