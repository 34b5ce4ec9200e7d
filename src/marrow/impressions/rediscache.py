"""The shared impression cache on Redis (the EVCache role): one list per profile.

Layout of ``<prefix><profile>``: element 0 is the header (``since``, 8 bytes little-endian), each
later element a chunk of impressions as little-endian int64 pairs (timestamp, title). ``put``
replaces the list in one MULTI/EXEC and sets its time to live (``max_age_s``); ``append`` adds a chunk
with RPUSHX, which does nothing when the profile is not cached — so a profile is never cached with
only its newest impressions. The time to live bounds how long an entry can miss an impression (a load
that raced a write; see :mod:`.cache`), and the shadow comparison measures how often that happens.

Redis being slow or down is not an error for the service: a failed call counts in ``errors``, keeps
its message in ``last_error``, and is a miss.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

import redis

__all__ = ["RedisSharedCache"]

_LITTLE = sys.byteorder == "little"


def _pack(values: list[int]) -> bytes:
    a = array("q", values)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        a.byteswap()
    return a.tobytes()


def _unpack(data: bytes) -> array[int]:
    a = array("q")
    a.frombytes(data)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        a.byteswap()
    return a


class RedisSharedCache:
    """A :class:`~marrow.impressions.cache.SharedCache` in the Redis at ``url``."""

    def __init__(
        self, url: str, max_age_s: float, prefix: str = "marrow:impressions:", timeout_s: float = 0.5
    ):
        self.client: Any = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self.prefix = prefix
        self.ttl_ms = max(1, int(max_age_s * 1000))
        self.errors = 0
        self.last_error: str | None = None

    def _key(self, profile: int) -> str:
        return f"{self.prefix}{profile}"

    def _failed(self, e: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(e).__name__}: {e}"

    def get(self, profile: int) -> tuple[int, Sequence[tuple[int, int]]] | None:
        try:
            items = self.client.lrange(self._key(profile), 0, -1)
        except redis.RedisError as e:
            self._failed(e)
            return None
        if not items:
            return None
        since = _unpack(items[0])[0]
        flat = _unpack(b"".join(items[1:]))
        return since, list(zip(flat[0::2], flat[1::2], strict=True))

    def put(self, profile: int, since: int, shown: Sequence[tuple[int, int]]) -> None:
        key = self._key(profile)
        values = [_pack([since])]
        if shown:
            values.append(_pack([v for s in shown for v in s]))
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(key)
            pipe.rpush(key, *values)
            pipe.pexpire(key, self.ttl_ms)
            pipe.execute()
        except redis.RedisError as e:
            self._failed(e)

    def append(self, shown: Mapping[int, Sequence[tuple[int, int]]]) -> None:
        if not shown:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for profile, new in shown.items():
                pipe.rpushx(self._key(profile), _pack([v for s in new for v in s]))
            pipe.execute()
        except redis.RedisError as e:
            self._failed(e)

    def forget(self, profiles: list[int]) -> None:
        """Drop these profiles' entries (tests and benchmarks that reuse profile ids)."""
        if profiles:
            try:
                self.client.delete(*[self._key(p) for p in profiles])
            except redis.RedisError as e:
                self._failed(e)

    def close(self) -> None:
        self.client.close()
