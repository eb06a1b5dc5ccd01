"""Web Call sessions (SPEC §3): which user's Web Call runs on which extension, since when."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, delete, exists, insert, not_, or_, select
from sqlalchemy.engine import Connection

from mtctl.domain.model import UserSpec
from mtctl.errors import Conflict, NotFound, UsageError
from mtctl.store import audit
from mtctl.store.snapshots import user_specs
from mtctl.store.tables import (
    app_user,
    extension,
    user_webcall_extension,
    webcall_group_extension,
    webcall_session,
)

if TYPE_CHECKING:
    from mtctl.store.rows import AnyRow


def _user(conn: Connection, username: str) -> tuple[int, UserSpec]:
    user_id = conn.execute(select(app_user.c.id)
                           .where(app_user.c.username == username)).scalar()
    if user_id is None:
        raise NotFound(f"unknown user {username!r}", "see: mtctl user list")
    return user_id, user_specs(conn, [user_id])[user_id][0]


def _sessions_query() -> Select[Any]:
    return (select(webcall_session.c.id, app_user.c.username.label("user"),
                   extension.c.number.label("extension"), webcall_session.c.since)
            .join(app_user, app_user.c.id == webcall_session.c.user_id)
            .join(extension, extension.c.id == webcall_session.c.extension_id))


def _public(row: AnyRow) -> dict[str, Any]:
    since = audit.as_utc(row.since)
    return {"user": row.user, "extension": row.extension,
            "since": since.isoformat(timespec="seconds") if since else None}


def list_sessions(conn: Connection) -> list[dict[str, Any]]:
    """Every open session, by user."""
    return [_public(row) for row in conn.execute(_sessions_query().order_by(app_user.c.username))]


def session_of(conn: Connection, username: str) -> str | None:
    """The extension of USERNAME's open session, or None."""
    return conn.execute(select(extension.c.number)
                        .join(webcall_session, webcall_session.c.extension_id == extension.c.id)
                        .join(app_user, app_user.c.id == webcall_session.c.user_id)
                        .where(app_user.c.username == username)).scalar()


def _busy(conn: Connection) -> dict[str, str]:
    """extension number -> username of every open session."""
    return {row.extension: row.user for row in conn.execute(_sessions_query())}


def _choose(user: UserSpec, wanted: str | None, busy: dict[str, str]) -> str:
    allowed = user.session_extensions
    if not allowed:
        raise UsageError(f"user {user.username} has no Web Call extension",
                         f"set one first: mtctl user set {user.username} --webcall-mode ...")
    if wanted is not None:
        if wanted not in allowed:
            raise NotFound(f"{wanted} is not one of {user.username}'s Web Call extensions "
                           f"({', '.join(allowed)})", f"use --ext with one of them, or see: "
                           f"mtctl user show {user.username}")
        return wanted
    if user.webcall_mode == "multiterminal":
        return allowed[0]
    if len(user.webcall_extensions) == 1:  # one extension of the user's own
        return user.webcall_extensions[0]
    if not user.webcall_extensions:  # pool only: the first free extension of the group
        free = [n for n in allowed if n not in busy]
        if not free:
            raise Conflict(f"every extension of group {user.webcall_group} is in use "
                           f"({', '.join(allowed)})", "wait for a session to stop, or add an "
                           f"extension: mtctl group add-ext {user.webcall_group} NUMBER")
        return free[0]
    raise UsageError(f"user {user.username} has several Web Call extensions "
                     f"({', '.join(allowed)})", "name one with --ext NUMBER")


def start_session(conn: Connection, *, actor: str, username: str, number: str | None,
                  now: datetime) -> dict[str, Any]:
    """Open USERNAME's Web Call session on NUMBER (default: see _choose); audited."""
    user_id, user = _user(conn, username)
    busy = _busy(conn)
    current = session_of(conn, username)
    if current is not None:
        raise Conflict(f"user {username} already has a Web Call session on {current}",
                       f"stop it first: mtctl webcall stop {username}")
    chosen = _choose(user, number, busy)
    if chosen in busy:
        raise Conflict(f"extension {chosen} is in use by {busy[chosen]}'s Web Call session",
                       f"choose another extension, or: mtctl webcall stop {busy[chosen]}")
    ext_id = conn.execute(select(extension.c.id).where(extension.c.number == chosen)).scalar()
    now = now.replace(microsecond=0)  # what list and the audit trail show, exactly
    conn.execute(insert(webcall_session).values(user_id=user_id, extension_id=ext_id, since=now))
    after = {"user": username, "extension": chosen,
             "since": now.isoformat(timespec="seconds")}
    audit.record(conn, actor=actor, action="start", obj=f"webcall {username}",
                 changes=audit.diff({}, after))
    return after


def stop_session(conn: Connection, *, actor: str, username: str) -> dict[str, Any]:
    """Close USERNAME's Web Call session; audited."""
    _user(conn, username)
    row = conn.execute(_sessions_query().where(app_user.c.username == username)).first()
    if row is None:
        raise NotFound(f"user {username} has no Web Call session", "see: mtctl webcall list")
    return _end(conn, row, actor=actor)


def _end(conn: Connection, row: AnyRow, *, actor: str) -> dict[str, Any]:
    before = _public(row)
    conn.execute(delete(webcall_session).where(webcall_session.c.id == row.id))
    audit.record(conn, actor=actor, action="stop", obj=f"webcall {row.user}",
                 changes=audit.diff(before, {}))
    return before


def _stale(user_ids: Iterable[int] | None = None, ending_users: Iterable[int] = (),
           ) -> Select[Any]:
    """Sessions on an extension that is not among their user's Web Call extensions (mode, list
    or group changed), and every session of ENDING_USERS."""
    s = webcall_session
    valid = or_(
        and_(app_user.c.webcall_mode == "multiterminal",
             s.c.extension_id == app_user.c.login_extension_id),
        and_(app_user.c.webcall_mode == "exclusive",
             s.c.extension_id != app_user.c.login_extension_id,
             or_(exists().where(user_webcall_extension.c.user_id == s.c.user_id,
                                user_webcall_extension.c.extension_id == s.c.extension_id),
                 exists().where(webcall_group_extension.c.group_id
                                == app_user.c.webcall_group_id,
                                webcall_group_extension.c.extension_id == s.c.extension_id))))
    ending = list(ending_users)
    stale = not_(valid)
    if ending:
        stale = or_(stale, s.c.user_id.in_(ending))
    query = _sessions_query().where(stale).order_by(app_user.c.username)
    if user_ids is not None:
        query = query.where(s.c.user_id.in_(list(user_ids) + ending))
    return query


def invalid_sessions(conn: Connection) -> list[dict[str, Any]]:
    """Sessions no write leaves behind: on an extension that is not one of the user's Web Call
    extensions (check reports them)."""
    return [_public(row) for row in conn.execute(_stale())]


def end_invalid_sessions(conn: Connection, *, actor: str,
                         user_ids: Iterable[int] | None = None,
                         ending_users: Iterable[int] = ()) -> list[dict[str, Any]]:
    """Stop (audited) every session on an extension that is no longer among its user's Web
    Call extensions (mode, list or group changed), and every session of ENDING_USERS."""
    rows = conn.execute(_stale(user_ids, ending_users)).all()
    return [_end(conn, row, actor=actor) for row in rows]


def end_sessions_on(conn: Connection, *, actor: str,
                    extension_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Stop (audited) every session on these extensions, before they go."""
    ids = list(extension_ids)
    if not ids:
        return []
    rows = conn.execute(_sessions_query().where(webcall_session.c.extension_id.in_(ids))
                        .order_by(app_user.c.username)).all()
    return [_end(conn, row, actor=actor) for row in rows]
