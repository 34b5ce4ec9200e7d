"""Fragments: a page served in parts, the first rows fast and the rest through a cursor.

A :class:`Cursor` says where the next fragment starts and what it must keep: the store version the
first fragment read (so every fragment of a page reads one consistent version), the titles already
shown (a bitmap over that version's ordinals, so rows stay deduplicated across fragments without a
lookup per title) and when the page was started (so engagement since then can trigger a row). A
cursor whose version is gone starts its rows afresh: the fragment says so (``consistent=False``).
It travels as an opaque, URL-safe string; a malformed or tampered one is refused with
:class:`~marrow.errors.RequestError`, never half-used.
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

MAX_ORDINALS = 1 << 27  # a bitmap of titles shown covers at most this many ordinals (16 MiB unpacked)


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    page: str
    subject: Any
    query: str | None
    version: int | None
    tag: str  # state tag of the version the page reads
    offset: int | None  # a local client's view: the offset of the overlay the page reads
    next: int  # index of the first section of the next fragment
    started: float  # when the first fragment was built (seconds since the epoch)
    seen: bytes  # titles already shown: a zlib'd bitmap over the version's Title ordinals

    @staticmethod
    def pack_shown(shown: np.ndarray) -> bytes:
        """``shown`` (a bool per Title ordinal of the cursor's version) as the cursor carries it."""
        return zlib.compress(np.packbits(shown, bitorder="little").tobytes(), 1)

    def shown(self, capacity: int) -> np.ndarray:
        """The titles already shown, a bool per ordinal of the cursor's version (of ``capacity``)."""
        if capacity > MAX_ORDINALS:
            raise RequestError(f"a page over {capacity:,} titles is too large for a cursor")
        try:
            raw = zlib.decompress(self.seen, bufsize=capacity // 8 + 1)
        except zlib.error:
            raise RequestError("the cursor is damaged (its seen titles do not decompress)") from None
        if len(raw) != (capacity + 7) // 8:
            raise RequestError("the cursor is damaged (its seen titles are not this version's)")
        return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=capacity, bitorder="little").astype(
            bool
        )


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
