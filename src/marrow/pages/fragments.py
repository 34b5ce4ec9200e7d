"""Fragments: a page served in parts, the first rows fast and the rest through a cursor.

A :class:`Cursor` says where the next fragment starts and what it must keep: the store version the
first fragment read (so every fragment of a page reads one consistent version), the titles already
shown (their ordinals in that version, so rows stay deduplicated across fragments without a lookup
per title) and when the page was started (so engagement since then can trigger a row). A
cursor whose version is gone starts its rows afresh: the fragment says so (``consistent=False``).
It travels as an opaque, URL-safe string; a malformed or tampered one is refused with
:class:`~marrow.errors.RequestError`, never half-used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import msgspec
import numpy as np

from marrow.errors import RequestError

MAX_ORDINALS = 1 << 27  # a cursor's version has at most this many Title ordinals (16 MiB as a bool mask)
_GAPS: dict[int, np.dtype[Any]] = {2: np.dtype("<u2"), 4: np.dtype("<u4")}  # gap width → type


class Cursor(msgspec.Struct, frozen=True, array_like=True):
    page: str
    subject: Any
    query: str | None
    version: int | None
    tag: str  # state tag of the version the page reads
    offset: int | None  # a local client's view: the offset of the overlay the page reads
    next: int  # index of the first section of the next fragment
    started: float  # when the first fragment was built (seconds since the epoch)
    seen: bytes  # titles already shown: a width byte, then the gaps between their ordinals, ascending

    @staticmethod
    def pack_shown(shown: np.ndarray) -> bytes:
        """``shown`` (a bool per Title ordinal of the cursor's version) as the cursor carries it: the
        gaps between the shown ordinals (the first from 0), as uint16 when they all fit, else uint32.
        A page shows hundreds of titles, so this is a kilobyte or two, with no compression to run."""
        gaps = np.flatnonzero(shown)
        gaps[1:] -= gaps[:-1].copy()  # (the first gap is from ordinal 0)
        width = 2 if not len(gaps) or int(gaps.max()) < 1 << 16 else 4
        return bytes([width]) + gaps.astype(_GAPS[width]).tobytes()

    def shown(self, capacity: int) -> np.ndarray:
        """The titles already shown, a bool per ordinal of the cursor's version (of ``capacity``)."""
        if capacity > MAX_ORDINALS:
            raise RequestError(f"a page over {capacity:,} titles is too large for a cursor")
        kind = _GAPS.get(self.seen[0]) if self.seen else None
        if kind is None or (len(self.seen) - 1) % kind.itemsize:
            raise RequestError("the cursor is damaged (its seen titles are not a list of gaps)")
        gaps = np.frombuffer(self.seen, dtype=kind, offset=1).astype(np.int64)
        ordinals = np.cumsum(gaps)
        if len(gaps) > 1 and not gaps[1:].all():
            raise RequestError("the cursor is damaged (a seen title is listed twice)")
        if len(ordinals) and ordinals[-1] >= capacity:
            raise RequestError("the cursor is damaged (its seen titles are not this version's)")
        out = np.zeros(capacity, dtype=bool)
        out[ordinals] = True
        return out


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
