"""The user portal's credentials (SPEC §11): one-time login links, sessions, portal passwords.

Links and session ids are 256-bit random secrets handed out once; the store keeps only their
SHA-256 digests, so a copy of the store logs nobody in. A portal password is kept only as a
passlib hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from mtctl.domain import provisioning
from mtctl.errors import UsageError
from mtctl.store import audit, config
from mtctl.store.audit import as_utc
from mtctl.store.tables import (
    app_user,
    extension,
    portal_login_link,
    portal_password,
    portal_session,
)
from mtctl.store.users import require_user

MIN_PASSWORD = 12  # characters of a portal password
MAX_PASSWORD = 1024  # bounded work for the hash


@dataclass(frozen=True, slots=True)
class LoginLink:
    """A link just issued: the URL is the only copy of the token."""

    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    """A live portal session: whose, and until when."""

    username: str
    user_id: int
    expires_at: datetime


def _digest(secret: str) -> str:
    return provisioning.token_hash(secret)


def _prune(conn: Connection, now: datetime) -> None:
    """Forget expired links and sessions (they are refused anyway)."""
    conn.execute(delete(portal_login_link).where(portal_login_link.c.expires_at < now))
    conn.execute(delete(portal_session).where(portal_session.c.expires_at < now))


def issue_link(conn: Connection, *, actor: str, username: str, now: datetime) -> LoginLink:
    """A one-time login link for USERNAME under portal.base_url, valid portal.link_ttl_minutes."""
    user_id = require_user(conn, username)
    base_url = config.get_value(conn, "portal.base_url")
    if base_url is None:
        raise UsageError("the portal base URL is not configured, so no login link can be made",
                         "run: mtctl config set portal.base_url https://pbx.example.com/portal")
    expires = now + timedelta(minutes=config.int_value(conn, "portal.link_ttl_minutes"))
    token = provisioning.new_token()
    _prune(conn, now)
    conn.execute(insert(portal_login_link).values(
        user_id=user_id, token_hash=_digest(token), created_at=now, expires_at=expires))
    audit.record(conn, actor=actor, action="login-link", obj=f"user {username}",
                 changes={"expires_at": [None, expires.isoformat(timespec="seconds")]})
    return LoginLink(f"{base_url.rstrip('/')}/login/{token}", expires)


def link_user(conn: Connection, token: str, now: datetime) -> str | None:
    """The username a live, unused link logs in, without using it (None: refused)."""
    if not provisioning.looks_like_token(token):
        return None
    return conn.execute(
        select(app_user.c.username)
        .join(portal_login_link, portal_login_link.c.user_id == app_user.c.id)
        .where(portal_login_link.c.token_hash == _digest(token),
               portal_login_link.c.expires_at >= now)).scalar()


def redeem_link(conn: Connection, token: str, now: datetime) -> tuple[str, str] | None:
    """Use a link once: (username, new session id), or None when it is unknown, used, revoked
    or expired."""
    if not provisioning.looks_like_token(token):
        return None
    row = conn.execute(
        select(portal_login_link.c.id, portal_login_link.c.user_id, app_user.c.username)
        .join(app_user, app_user.c.id == portal_login_link.c.user_id)
        .where(portal_login_link.c.token_hash == _digest(token),
               portal_login_link.c.expires_at >= now)).first()
    if row is None:
        return None
    # Deleting is the use: of two racing redeems, only the one that deleted the row goes on.
    if not conn.execute(delete(portal_login_link)
                        .where(portal_login_link.c.id == row.id)).rowcount:
        return None
    session_id = _open_session(conn, row.user_id, now)
    audit.record(conn, actor=f"portal:{row.username}", action="portal-login",
                 obj=f"user {row.username}", changes={"by": [None, "link"]})
    return row.username, session_id


def _open_session(conn: Connection, user_id: int, now: datetime) -> str:
    session_id = provisioning.new_token()
    expires = now + timedelta(hours=config.int_value(conn, "portal.session_hours"))
    conn.execute(insert(portal_session).values(
        user_id=user_id, session_hash=_digest(session_id), created_at=now, expires_at=expires))
    return session_id


def session_of(conn: Connection, session_id: str, now: datetime) -> Session | None:
    """The live session a cookie names, or None."""
    if not provisioning.looks_like_token(session_id):
        return None
    row = conn.execute(
        select(app_user.c.username, portal_session.c.user_id, portal_session.c.expires_at)
        .join(app_user, app_user.c.id == portal_session.c.user_id)
        .where(portal_session.c.session_hash == _digest(session_id),
               portal_session.c.expires_at >= now)).first()
    if row is None:
        return None
    expires = as_utc(row.expires_at)
    assert expires is not None
    return Session(row.username, row.user_id, expires)


def end_session(conn: Connection, session_id: str) -> None:
    """Log out one session (nothing happens for an unknown one)."""
    found = conn.execute(
        select(app_user.c.username)
        .join(portal_session, portal_session.c.user_id == app_user.c.id)
        .where(portal_session.c.session_hash == _digest(session_id))).scalar()
    if found is None:
        return
    conn.execute(delete(portal_session).where(portal_session.c.session_hash
                                              == _digest(session_id)))
    audit.record(conn, actor=f"portal:{found}", action="portal-logout", obj=f"user {found}")


def logout_all(conn: Connection, *, actor: str, username: str) -> tuple[int, int]:
    """End every session of USERNAME and revoke its unused login links: (sessions, links)."""
    user_id = require_user(conn, username)
    sessions = conn.execute(delete(portal_session)
                            .where(portal_session.c.user_id == user_id)).rowcount
    links = conn.execute(delete(portal_login_link)
                         .where(portal_login_link.c.user_id == user_id)).rowcount
    audit.record(conn, actor=actor, action="logout-all", obj=f"user {username}",
                 changes={"sessions_ended": [None, sessions], "links_revoked": [None, links]})
    return sessions, links


def _hasher() -> Any:
    """passlib's argon2 (imported on first use: a slow import)."""
    from passlib.hash import argon2

    return argon2


def set_password(conn: Connection, *, actor: str, username: str, password: str,
                 now: datetime) -> None:
    """Store USERNAME's portal password as a passlib argon2 hash ('' removes it)."""
    user_id = require_user(conn, username)
    conn.execute(delete(portal_password).where(portal_password.c.user_id == user_id))
    if password:
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise UsageError(f"a portal password needs {MIN_PASSWORD} to {MAX_PASSWORD} "
                             f"characters; this one has {len(password)}",
                             "use a longer passphrase")
        conn.execute(insert(portal_password).values(
            user_id=user_id, password_hash=_hasher().hash(password), updated_at=now))
    audit.record(conn, actor=actor, action="set-portal-password" if password
                 else "remove-portal-password", obj=f"user {username}")


def password_login(conn: Connection, username: str, password: str,
                   now: datetime) -> str | None:
    """A new session id when USERNAME's portal password is PASSWORD, else None."""
    row = conn.execute(
        select(portal_password.c.user_id, portal_password.c.password_hash)
        .join(app_user, app_user.c.id == portal_password.c.user_id)
        .where(app_user.c.username == username)).first()
    hasher = _hasher()
    if row is None or not 0 < len(password) <= MAX_PASSWORD:
        # As slow as a wrong password, so the answer's time does not tell who has one.
        hasher.verify("x" * MIN_PASSWORD, _dummy_hash())
        return None
    if not hasher.verify(password, row.password_hash):
        return None
    if hasher.needs_update(row.password_hash):
        conn.execute(update(portal_password).where(portal_password.c.user_id == row.user_id)
                     .values(password_hash=hasher.hash(password), updated_at=now))
    session_id = _open_session(conn, row.user_id, now)
    audit.record(conn, actor=f"portal:{username}", action="portal-login",
                 obj=f"user {username}", changes={"by": [None, "password"]})
    return session_id


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_hasher().hash("not-a-password-" + provisioning.new_token()))
    return _DUMMY[0]


def owned_extensions(conn: Connection, user_id: int) -> list[str]:
    """The extensions USER owns (type OWNER): its login extension."""
    return list(conn.execute(
        select(extension.c.number).join(app_user, app_user.c.login_extension_id == extension.c.id)
        .where(app_user.c.id == user_id).order_by(extension.c.number)).scalars())
