"""Sign-in for the editor app: the session cookie, CSRF tokens, and who may see what.

* The session cookie holds the session's random token (HttpOnly, SameSite=Lax, Secure unless the
  settings allow plain HTTP for local use); the CMS keeps only its hash (:mod:`marrow.cms.editors`).
* Every form that writes carries the session's CSRF token; a POST whose token does not match is
  refused (403) before anything else happens. The sign-in form, which has no session yet, uses a
  double-submit token: a random cookie that the form must repeat.
* Anonymous requests: a page redirects to the sign-in form (and back afterwards); a JSON twin or a
  POST is answered 401.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from marrow.cms.editors import Editors, Session
from marrow.errors import AuthError

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "Forbidden",
    "check_csrf",
    "login_token",
    "session_of",
    "sign_in_redirect",
]

SESSION_COOKIE = "marrow_session"
LOGIN_COOKIE = "marrow_signin"


class Forbidden(Exception):
    """A request that must be refused: ``status`` and what to tell the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def session_of(request: Request, editors: Editors) -> Session | None:
    """The request's live session, or None."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    try:
        return editors.session(token)
    except AuthError:
        return None


def check_csrf(form_token: str | None, expected: str) -> None:
    """Refuse (403) a write whose form does not carry the expected token."""
    if not form_token or not hmac.compare_digest(form_token.encode(), expected.encode()):
        raise Forbidden(
            403, "the form's CSRF token is missing or does not match: reload the page and try again"
        )


def login_token(request: Request) -> str:
    """The sign-in form's double-submit token (the cookie's value, or a new one)."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def sign_in_redirect(request: Request, root: str) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{root}/sign-in?next={quote(target, safe='')}", status_code=303)
