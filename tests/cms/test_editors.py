"""Editors and sign-in over both databases: hashed passwords, sessions that expire and end."""

from __future__ import annotations

import pytest

from cms_backends import Clock
from marrow.cms import CMS, hash_password, verify_password
from marrow.errors import AuthError, ContentError


def test_passwords_are_stored_hashed_and_salted() -> None:
    a, b = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert a != b and a.startswith("scrypt$") and "correct" not in a
    assert verify_password("correct horse battery", a)
    assert not verify_password("correct horse batterz", a)
    assert not verify_password("x", "md5$abc") and not verify_password("x", "garbage")


def test_sign_in_and_sessions(cms_store: CMS, clock: Clock) -> None:
    cms_store.editors.add("ana", "correct horse battery", "Ana Silva")
    with cms_store.db.transaction() as tx:
        ((stored,),) = tx.execute("SELECT password FROM editors WHERE username = 'ana'")
    assert "correct horse" not in stored
    session = cms_store.editors.sign_in("ana", "correct horse battery", ttl=60)
    assert session.token and session.csrf and session.editor.name == "Ana Silva"
    with cms_store.db.transaction() as tx:
        assert tx.execute("SELECT COUNT(*) FROM sessions WHERE token = ?", (session.token,)) == [(0,)]
    again = cms_store.editors.session(session.token)
    assert (again.editor, again.csrf, again.token) == (session.editor, session.csrf, "")
    clock.now += 61
    with pytest.raises(AuthError, match="expired"):
        cms_store.editors.session(session.token)


def test_wrong_credentials_say_nothing_about_which_was_wrong(cms_store: CMS) -> None:
    cms_store.editors.add("ana", "correct horse battery")
    for name, password in [("ana", "wrong password"), ("bob", "correct horse battery")]:
        with pytest.raises(AuthError, match=r"^wrong username or password$"):
            cms_store.editors.sign_in(name, password)


def test_sign_out_and_password_change_end_sessions(cms_store: CMS) -> None:
    cms_store.editors.add("ana", "correct horse battery")
    one = cms_store.editors.sign_in("ana", "correct horse battery")
    two = cms_store.editors.sign_in("ana", "correct horse battery")
    cms_store.editors.sign_out(one.token)
    with pytest.raises(AuthError):
        cms_store.editors.session(one.token)
    assert cms_store.editors.session(two.token).editor.username == "ana"
    cms_store.editors.set_password("ana", "another long password")
    with pytest.raises(AuthError):
        cms_store.editors.session(two.token)
    assert cms_store.editors.sign_in("ana", "another long password")
    with pytest.raises(AuthError):
        cms_store.editors.session("")


def test_editor_names_and_passwords_are_checked(cms_store: CMS) -> None:
    with pytest.raises(ContentError, match="username 'Ana Silva'"):
        cms_store.editors.add("Ana Silva", "correct horse battery")
    with pytest.raises(ContentError, match="at least 10 characters"):
        cms_store.editors.add("ana", "short")
    cms_store.editors.add("ana", "correct horse battery")
    with pytest.raises(ContentError, match="there is an editor 'ana' already"):
        cms_store.editors.add("ana", "correct horse battery")
    assert cms_store.editors.get("ana") is not None and cms_store.editors.get("bob") is None
