"""The page data service, a process of its own: keys over HTTP, from its near-cache over the table.

Page construction asks it for many keys at a time (``POST /keys``, a msgpack list of keys; the
answer a msgpack :class:`Answer` of values, None for a missing key, and how many of them were near-cache
misses — table reads the request waited for). ``GET /stats`` gives the cache's counters as JSON.

    python -m legacy.service --dsn postgresql://postgres@127.0.0.1:5432/test --table kv_1234 \\
        --port 8791 --ttl 30 --jitter 0.1

:class:`PageDataClient` is page construction's side: one keep-alive connection per thread, counting
the calls it makes (each a network round trip) and the misses they caused.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import threading
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from legacy.cache import NearCache
from legacy.kv import KVTable


class Answer(msgspec.Struct, array_like=True):
    values: list[bytes | None]
    misses: int


def service_app(cache: NearCache) -> Starlette:
    decode_keys = msgspec.msgpack.Decoder(list[str]).decode
    encode = msgspec.msgpack.Encoder().encode

    async def keys(request: Request) -> Response:
        try:
            wanted = decode_keys(await request.body())
        except msgspec.DecodeError as e:
            return JSONResponse({"error": f"the body must be a msgpack list of keys: {e}"}, status_code=400)
        if cache.holds(wanted):
            values, misses = cache.get_many(wanted)
        else:  # a miss reads the table: in a worker thread, so other requests go on
            values, misses = await run_in_threadpool(cache.get_many, wanted)
        return Response(encode(Answer(values, misses)), media_type="application/msgpack")

    async def stats(request: Request) -> Response:
        return JSONResponse({**dataclasses.asdict(cache.stats), "keys": len(cache)})

    return Starlette(routes=[Route("/keys", keys, methods=["POST"]), Route("/stats", stats)])


class PageDataClient:
    """Page construction's client of the page data service at ``host:port``; see the module docstring."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.calls = 0
        self.keys = 0
        self.misses = 0  # keys the near-cache did not hold
        self.miss_calls = 0  # calls that waited for a table read (one query each)
        self._local = threading.local()
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder(Answer).decode

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return conn

    def _call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/msgpack"} if body else {}
        for attempt in (1, 2):  # a kept-alive connection the server has since closed: once more, anew
            conn = self._connection()
            try:
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        if response.status != 200:
            raise RuntimeError(f"the page data service answered {response.status}: {data[:200]!r}")
        return data

    def get_many(self, keys: list[str]) -> dict[str, bytes | None]:
        """The values of ``keys`` (None for a key the service has no value for), in one call."""
        answer = self._decode(self._call("POST", "/keys", self._encode(keys)))
        self.calls += 1
        self.keys += len(keys)
        self.misses += answer.misses
        self.miss_calls += answer.misses > 0
        return dict(zip(keys, answer.values, strict=True))

    def stats(self) -> dict[str, Any]:
        """The service's near-cache counters."""
        return dict(msgspec.json.decode(self._call("GET", "/stats")))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ttl", type=float, default=30.0, help="seconds between a key's refreshes")
    p.add_argument("--jitter", type=float, default=0.1, help="± share of the ttl, drawn per refresh")
    a = p.parse_args(argv)
    reads, refreshes = KVTable(a.dsn, a.table), KVTable(a.dsn, a.table)
    cache = NearCache(reads.get_many, a.ttl, a.jitter, refresh_load=refreshes.get_many)
    try:
        uvicorn.run(service_app(cache), host=a.host, port=a.port, log_level="warning", timeout_keep_alive=75)
    finally:
        cache.close()
        reads.close()
        refreshes.close()


if __name__ == "__main__":
    main()
