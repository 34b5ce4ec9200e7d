"""Fragments: a page served in parts, the first rows fast and the rest through a cursor.

A :class:`Cursor` says where the next fragment starts and what it must keep: the store version the
first fragment read (so every fragment of a page reads one consistent version), the titles already
shown (so rows stay deduplicated across fragments) and when the page was started (so engagement
since then can trigger a row). It travels as an opaque, URL-safe string; a malformed or tampered one
is refused with :class:`~marrow.errors.RequestError`, never half-used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from typing import Any

import msgspec
import numpy as np

from marrow.errors import RequestError

MAX_SEEN = 20_000  # titles a cursor remembers; more than any page shows


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    page: str
    subject: Any
    query: str | None
    version: int | None
    tag: str  # state tag of the version the page reads
    offset: int | None  # a local client's view: the offset of the overlay the page reads
    next: int  # index of the first section of the next fragment
    started: float  # when the first fragment was built (seconds since the epoch)
    seen: bytes  # ids already shown, zlib'd sorted uint32 deltas

    @staticmethod
    def pack_seen(ids: set[int]) -> bytes:
        arr = np.fromiter(sorted(ids), dtype=np.int64, count=len(ids))
        return zlib.compress(np.diff(arr, prepend=0).astype(np.uint32).tobytes(), 1)

    def seen_ids(self) -> set[int]:
        try:
            raw = zlib.decompress(self.seen, bufsize=4 * MAX_SEEN)
        except zlib.error:
            raise RequestError("the cursor is damaged (its seen titles do not decompress)") from None
        if len(raw) % 4 or len(raw) > 4 * MAX_SEEN:
            raise RequestError("the cursor is damaged (its seen titles are malformed)")
        return set(np.cumsum(np.frombuffer(raw, dtype=np.uint32).astype(np.int64)).tolist())


class CursorCodec:
    """Encodes cursors as signed, URL-safe strings (the signature keeps a client from forging one)."""

    def __init__(self, secret: bytes):
        self.secret = secret
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Cursor)

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self.secret, body, hashlib.blake2s).digest()[:12]

    def encode(self, cursor: Cursor) -> str:
        body = self._encoder.encode(cursor)
        return base64.urlsafe_b64encode(self._sign(body) + body).rstrip(b"=").decode()

    def decode(self, text: str) -> Cursor:
        if len(text) > 64_000:
            raise RequestError("the cursor is too long to be one this site issued")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (ValueError, TypeError):
            raise RequestError("the cursor is not one this site issued (not base64)") from None
        signature, body = raw[:12], raw[12:]
        if not hmac.compare_digest(signature, self._sign(body)):
            raise RequestError("the cursor is not one this site issued (bad signature); start the page again")
        try:
            return self._decoder.decode(body)
        except msgspec.DecodeError as e:
            raise RequestError(f"the cursor is malformed: {e}") from None
