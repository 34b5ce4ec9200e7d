"""Editors and sign-in: scrypt password hashes and server-side sessions, in the CMS's database.

* A password is stored as ``scrypt$n$r$p$salt$hash`` (base64, a random 16-byte salt per editor);
  never in plain text. Checking one takes tens of milliseconds on purpose.
* A session is a random 32-byte token given to the browser once; the database keeps only its SHA-256,
  so a copy of the table cannot be used to sign in. Each session has its own CSRF token (forms carry
  it; the editor app compares it on every write) and an expiry; signing out deletes it.

Sign-in failures do not say whether the name or the password was wrong, and an unknown name costs
the same hashing time as a wrong password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from marrow.cms.database import Database
from marrow.errors import AuthError, ContentError

__all__ = ["Editor", "Editors", "Session", "hash_password", "verify_password"]

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,39}")
MIN_PASSWORD = 10


def hash_password(password: str, n: int = _SCRYPT["n"], r: int = _SCRYPT["r"], p: int = _SCRYPT["p"]) -> str:
    """An scrypt hash of ``password`` with a fresh salt, in the form :func:`verify_password` reads."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Does ``password`` match a hash from :func:`hash_password`? (Constant-time comparison.)"""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Editor:
    username: str
    name: str


@dataclass(frozen=True)
class Session:
    """A signed-in editor. ``token`` is only set when the session is created (it is not stored)."""

    editor: Editor
    csrf: str
    expires_at: float
    token: str = ""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Editors:
    """The editors who may sign in, and their sessions."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock

    def add(self, username: str, password: str, name: str = "") -> Editor:
        """Add an editor. The username is 2–40 lower-case letters, digits, ``.``, ``_`` or ``-``; the
        password at least 10 characters."""
        if not _USERNAME.fullmatch(username):
            raise ContentError(
                f"username {username!r}: use 2-40 lower-case letters, digits, '.', '_' or '-', "
                f"starting with a letter or digit"
            )
        if len(password) < MIN_PASSWORD:
            raise ContentError(f"the password must have at least {MIN_PASSWORD} characters")
        editor = Editor(username, name.strip() or username)
        try:
            with self.db.transaction() as tx:
                tx.execute(
                    "INSERT INTO editors (username, name, password, created_at) VALUES (?, ?, ?, ?)",
                    (username, editor.name, hash_password(password), self.clock()),
                )
                tx.execute(
                    "INSERT INTO audit (at, editor, action, detail) VALUES (?, ?, 'editor added', '{}')",
                    (self.clock(), username),
                )
        except Exception as e:
            if self.db.is_unique_violation(e):
                raise ContentError(f"there is an editor {username!r} already; choose another name") from None
            raise
        return editor

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ContentError(f"the password must have at least {MIN_PASSWORD} characters")
        with self.db.transaction() as tx:
            if not tx.execute(
                "UPDATE editors SET password = ? WHERE username = ? RETURNING username",
                (hash_password(password), username),
            ):
                raise AuthError(f"there is no editor {username!r}")
            tx.execute("DELETE FROM sessions WHERE username = ?", (username,))  # sign out everywhere

    def sign_in(self, username: str, password: str, ttl: float = 8 * 3600) -> Session:
        """A new session for an editor whose password matches; AuthError otherwise."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT name, password FROM editors WHERE username = ? AND disabled = 0", (username,)
            )
        stored = rows[0][1] if rows else _DUMMY_HASH
        if not verify_password(password, stored) or not rows:
            raise AuthError("wrong username or password")
        token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.clock()
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            tx.execute(
                "INSERT INTO sessions (token, username, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (_token_hash(token), username, csrf, now, now + ttl),
            )
            tx.execute(
                "INSERT INTO audit (at, editor, action, detail) VALUES (?, ?, 'signed in', '{}')",
                (now, username),
            )
        return Session(Editor(username, rows[0][0]), csrf, now + ttl, token)

    def session(self, token: str) -> Session:
        """The live session of ``token``; AuthError when it is unknown or expired."""
        if not token:
            raise AuthError("not signed in")
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT s.username, e.name, s.csrf, s.expires_at FROM sessions s "
                "JOIN editors e ON e.username = s.username WHERE s.token = ? AND e.disabled = 0",
                (_token_hash(token),),
            )
        if not rows or rows[0][3] < self.clock():
            raise AuthError("the session has expired or was signed out; sign in again")
        username, name, csrf, expires_at = rows[0]
        return Session(Editor(username, name), csrf, expires_at)

    def sign_out(self, token: str) -> None:
        with self.db.transaction() as tx:
            rows = tx.execute(
                "DELETE FROM sessions WHERE token = ? RETURNING username", (_token_hash(token),)
            )
            if rows:
                tx.execute(
                    "INSERT INTO audit (at, editor, action, detail) VALUES (?, ?, 'signed out', '{}')",
                    (self.clock(), rows[0][0]),
                )

    def get(self, username: str) -> Editor | None:
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT username, name FROM editors WHERE username = ?", (username,))
        return Editor(*rows[0]) if rows else None
