"""Portal credentials from the CLI: login links, logout-all, portal passwords (SPEC §11)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select

from mtctl.store import portal
from mtctl.store.db import open_store
from mtctl.store.tables import portal_login_link, portal_password
from tests.cli.test_secrets import everything_stored
from tests.conftest import Mtctl

BASE = "https://pbx.example.com/portal"
PASSWORD = "correct horse battery staple"  # noqa: S105 (a test password)


@pytest.fixture
def portal_store(seeded: Mtctl) -> Mtctl:
    seeded.ok("config", "set", "portal.base_url", BASE + "/")
    return seeded


def _token(link: str) -> str:
    assert link.startswith(BASE + "/login/"), link
    return link.rsplit("/", 1)[1]


def test_login_link_needs_the_base_url(seeded: Mtctl) -> None:
    r = seeded("user", "login-link", "ana")
    assert r.exit_code == 2, r.output
    assert "portal base URL is not configured" in r.stderr
    assert "mtctl config set portal.base_url" in r.stderr
    assert r.stdout == ""


def test_login_link_for_an_unknown_user_is_exit_3(portal_store: Mtctl) -> None:
    r = portal_store("user", "login-link", "nobody")
    assert r.exit_code == 3, r.output


def test_login_link_is_printed_once_stored_hashed_and_audited_without_the_token(
        portal_store: Mtctl) -> None:
    r = portal_store.ok("user", "login-link", "ana")
    token = _token(r.stdout.strip())
    assert len(token) == 43  # 256 bits, URL-safe base64
    assert token not in r.stderr
    stored = everything_stored(portal_store.url)
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    audit = portal_store.ok("audit", "--json").stdout
    assert token not in audit
    rows = json.loads(audit)
    assert rows[-1]["action"] == "login-link" and rows[-1]["object"] == "user ana"
    # A second link is another secret.
    assert _token(portal_store.ok("user", "login-link", "ana").stdout.strip()) != token


def test_login_link_qr_carries_the_link(portal_store: Mtctl) -> None:
    r = portal_store.ok("user", "login-link", "ana", "--qr")
    lines = r.stdout.rstrip("\n").splitlines()
    assert len(lines) > 10, "a QR code above the link"
    _token(lines[-1])


def test_link_is_single_use_expires_and_is_revoked_by_logout_all(portal_store: Mtctl) -> None:
    store = open_store(portal_store.url)
    now = datetime.now(UTC)
    try:
        first = _token(portal_store.ok("user", "login-link", "ana").stdout.strip())
        with store.write() as conn:
            assert portal.link_user(conn, first, now) == "ana"
            redeemed = portal.redeem_link(conn, first, now)
        assert redeemed is not None and redeemed[0] == "ana"
        session_id = redeemed[1]
        second = _token(portal_store.ok("user", "login-link", "ana").stdout.strip())
        with store.write() as conn:
            assert portal.redeem_link(conn, first, now) is None, "used"
            assert portal.session_of(conn, session_id, now) is not None
            late = now + timedelta(minutes=16)
            assert portal.redeem_link(conn, second, late) is None, "expired after 15 minutes"
            assert portal.session_of(conn, session_id, now + timedelta(hours=8, minutes=1)) \
                is None, "a session lasts 8 hours"
        third = _token(portal_store.ok("user", "login-link", "ana").stdout.strip())
        r = portal_store.ok("user", "logout-all", "ana")
        assert "ended 1 portal session(s)" in r.stderr
        with store.write() as conn:
            assert portal.session_of(conn, session_id, now) is None, "logged out"
            assert portal.redeem_link(conn, third, now) is None, "revoked"
    finally:
        store.close()
    rows = json.loads(portal_store.ok("audit", "--json").stdout)
    actions = [(row["actor"], row["action"]) for row in rows]
    assert ("portal:ana", "portal-login") in actions
    assert ("tester", "logout-all") in actions


def test_link_ttl_follows_the_setting(portal_store: Mtctl) -> None:
    portal_store.ok("config", "set", "portal.link_ttl_minutes", "1")
    token = _token(portal_store.ok("user", "login-link", "ana").stdout.strip())
    store = open_store(portal_store.url)
    try:
        with store.write() as conn:
            assert portal.redeem_link(conn, token, datetime.now(UTC) + timedelta(minutes=2)) \
                is None
    finally:
        store.close()


@pytest.mark.parametrize(("value", "message"), [("0", "from 1 to 1440"),
                                                ("ftp://x", "http(s) URL")])
def test_portal_settings_are_checked(seeded: Mtctl, value: str, message: str) -> None:
    name = "portal.link_ttl_minutes" if value == "0" else "portal.base_url"
    r = seeded("config", "set", name, value)
    assert r.exit_code == 2 and message in r.stderr, r.output


def test_portal_password_is_stored_as_an_argon2_hash_and_checked(portal_store: Mtctl) -> None:
    r = portal_store("user", "set-portal-password", "ana", "--password-stdin",
                     input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert PASSWORD not in r.output
    assert PASSWORD not in everything_stored(portal_store.url)
    engine = create_engine(portal_store.url)
    with engine.connect() as conn:
        stored = conn.execute(select(portal_password.c.password_hash)).scalar_one()
    engine.dispose()
    assert stored.startswith("$argon2")
    store = open_store(portal_store.url)
    now = datetime.now(UTC)
    try:
        with store.write() as conn:
            assert portal.password_login(conn, "ana", PASSWORD + "x", now) is None
            assert portal.password_login(conn, "bo", PASSWORD, now) is None
            session_id = portal.password_login(conn, "ana", PASSWORD, now)
            assert session_id is not None
            assert portal.session_of(conn, session_id, now).username == "ana"  # type: ignore[union-attr]
    finally:
        store.close()
    portal_store.ok("user", "set-portal-password", "ana", "--remove")
    engine = create_engine(portal_store.url)
    with engine.connect() as conn:
        assert conn.execute(select(portal_password)).first() is None
        assert conn.execute(select(portal_login_link)).first() is None
    engine.dispose()


def test_short_portal_password_is_refused(portal_store: Mtctl) -> None:
    r = portal_store("user", "set-portal-password", "ana", "--password-stdin",
                     input="short\n")
    assert r.exit_code == 2 and "12 to 1024 characters" in r.stderr, r.output
    assert "short" not in r.stderr.replace("use a longer", "")
