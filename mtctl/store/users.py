"""Users: the people who own extensions and decide, through Web Call mode, who rings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from mtctl.domain.model import WEBCALL_LICENSES, WEBCALL_MODES
from mtctl.domain.updates import UNCHANGED, UserUpdate
from mtctl.errors import Conflict, NotFound, UsageError
from mtctl.store import audit
from mtctl.store.catalog import id_by_name
from mtctl.store.lookup import inserted_id, require_extension
from mtctl.store.phones import public as phone_public
from mtctl.store.snapshots import phone_query, user_specs
from mtctl.store.tables import app_user, extension, phone, user_webcall_extension
from mtctl.store.validate import check_text, enforce
from mtctl.store.webcall import end_invalid_sessions


def require_user(conn: Connection, username: str) -> int:
    found: int | None = conn.execute(select(app_user.c.id)
                                     .where(app_user.c.username == username)).scalar()
    if found is None:
        raise NotFound(f"unknown user {username!r}", "see: mtctl user list")
    return found


def _login_id(conn: Connection, number: str, username: str) -> int:
    """The login extension's id; the user becomes its owner, unless another user is (exit 4)."""
    try:
        ext_id = require_extension(conn, number)
    except NotFound as exc:
        raise NotFound(f"MT012 login number {number!r} is not an existing extension",
                       f"add it first: mtctl ext add {number} --node NODE") from exc
    owner = conn.execute(select(app_user.c.username)
                         .where(app_user.c.login_extension_id == ext_id)).scalar()
    if owner is not None and owner != username:
        raise Conflict(f"MT012 extension {number} is already owned by user {owner}",
                       f"choose another --login, or change {owner}'s login first")
    return ext_id


def _check_choices(mode: str | None, license_: str | None, position: int | None) -> None:
    if mode is not None and mode not in WEBCALL_MODES:
        raise UsageError(f"unknown Web Call mode {mode!r}", "use exclusive or multiterminal")
    if license_ is not None and license_ not in WEBCALL_LICENSES:
        raise UsageError(f"unknown Web Call license {license_!r}", "use dedicated or pool")
    if position is not None and not 0 <= position <= 7:
        raise UsageError(f"Web Call position {position} is outside 0–7",
                         "use the position of the Web Call phone, 0 to 7")


def _set_webcall_extensions(conn: Connection, user_id: int, numbers: list[str]) -> None:
    conn.execute(delete(user_webcall_extension).where(user_webcall_extension.c.user_id == user_id))
    for rank, number in enumerate(dict.fromkeys(numbers)):
        conn.execute(insert(user_webcall_extension).values(
            user_id=user_id, extension_id=require_extension(conn, number), rank=rank))


def add_user(conn: Connection, *, actor: str, username: str, display_name: str, login: str,
             webcall_mode: str | None = None, webcall_license: str | None = None,
             webcall_extensions: list[str] | None = None, webcall_group: str | None = None,
             webcall_position: int | None = None) -> dict[str, Any]:
    username = username.strip()
    if not username:
        raise UsageError("a user needs a username", "e.g. mtctl user add ana --name 'Ana' ...")
    check_text(app_user, {"username": username, "display_name": display_name})
    if conn.execute(select(app_user.c.id).where(app_user.c.username == username)).first():
        raise Conflict(f"user {username!r} already exists", f"see: mtctl user show {username}")
    _check_choices(webcall_mode, webcall_license, webcall_position)
    has_webcall_options = (webcall_license or webcall_extensions or webcall_group
                           or webcall_position is not None)
    if webcall_mode is None and has_webcall_options:
        raise UsageError("Web Call options need a Web Call mode",
                         "add --webcall-mode exclusive or --webcall-mode multiterminal")
    values = {
        "username": username, "display_name": display_name,
        "login_extension_id": _login_id(conn, login, username),
        "webcall_mode": webcall_mode,
        "webcall_license": webcall_license or ("dedicated" if webcall_mode else None),
        "webcall_group_id": id_by_name(conn, "group", webcall_group) if webcall_group else None,
        "webcall_position": webcall_position,
    }
    check_text(app_user, values)
    user_id = inserted_id(conn.execute(insert(app_user).values(**values)))
    _set_webcall_extensions(conn, user_id, webcall_extensions or [])
    enforce(conn, user_ids=[user_id])
    created = get_user(conn, username)
    audit.record(conn, actor=actor, action="add", obj=f"user {username}",
                 changes=audit.diff({}, created))
    return created


def _public(conn: Connection, user_ids: list[int]) -> list[dict[str, Any]]:
    specs = user_specs(conn, user_ids)
    users = sorted((spec for spec, _ in specs.values()), key=lambda u: u.username)
    return [
        {"username": u.username, "display_name": u.display_name, "login": u.login,
         "webcall_mode": u.webcall_mode, "webcall_license": u.webcall_license,
         "webcall_extensions": list(u.webcall_extensions), "webcall_group": u.webcall_group,
         "webcall_position": u.webcall_position}
        for u in users
    ]


def get_user(conn: Connection, username: str) -> dict[str, Any]:
    return _public(conn, [require_user(conn, username)])[0]


def list_users(conn: Connection) -> list[dict[str, Any]]:
    return _public(conn, list(conn.execute(select(app_user.c.id)).scalars()))


def update_user(conn: Connection, *, actor: str, username: str,
                change: UserUpdate) -> dict[str, Any]:
    """Change a user: CHANGE's fields that are not UNCHANGED (None clears a field)."""
    user_id = require_user(conn, username)
    before = get_user(conn, username)
    values: dict[str, Any] = {}
    webcall_mode, webcall_license = change.webcall_mode, change.webcall_license
    webcall_group, webcall_position = change.webcall_group, change.webcall_position
    if change.display_name is not UNCHANGED:
        values["display_name"] = change.display_name
    if change.login is not UNCHANGED:
        values["login_extension_id"] = _login_id(conn, change.login, username)
    if webcall_mode is not UNCHANGED:
        _check_choices(webcall_mode, None, None)
        values["webcall_mode"] = webcall_mode
        if webcall_mode is None:
            values |= {"webcall_license": None, "webcall_group_id": None,
                       "webcall_position": None}
            _set_webcall_extensions(conn, user_id, [])
        elif before["webcall_license"] is None and webcall_license is UNCHANGED:
            values["webcall_license"] = "dedicated"
    if webcall_license is not UNCHANGED:
        _check_choices(None, webcall_license, None)
        values["webcall_license"] = webcall_license
    if webcall_group is not UNCHANGED:
        values["webcall_group_id"] = (id_by_name(conn, "group", webcall_group)
                                      if webcall_group else None)
    if webcall_position is not UNCHANGED:
        _check_choices(None, None, webcall_position)
        values["webcall_position"] = webcall_position
    if values:
        check_text(app_user, values)
        conn.execute(update(app_user).where(app_user.c.id == user_id).values(**values))
    if change.webcall_extensions is not UNCHANGED:
        _set_webcall_extensions(conn, user_id, list(change.webcall_extensions))
    end_invalid_sessions(conn, actor=actor, user_ids=[user_id])
    enforce(conn, user_ids=[user_id])
    after = get_user(conn, username)
    changes = audit.diff(before, after)
    if changes:
        audit.record(conn, actor=actor, action="set", obj=f"user {username}", changes=changes)
    return after


def remove_user(conn: Connection, *, actor: str, username: str) -> None:
    user_id = require_user(conn, username)
    before = get_user(conn, username)
    end_invalid_sessions(conn, actor=actor, user_ids=[], ending_users=[user_id])
    conn.execute(delete(user_webcall_extension).where(user_webcall_extension.c.user_id == user_id))
    conn.execute(delete(app_user).where(app_user.c.id == user_id))
    audit.record(conn, actor=actor, action="remove", obj=f"user {username}",
                 changes=audit.diff(before, {}))


def user_phones(conn: Connection, username: str) -> list[dict[str, Any]]:
    """The user-portal view: phones of the login extension and of own Web Call extensions."""
    user_id = require_user(conn, username)
    spec, _ = user_specs(conn, [user_id])[user_id]
    numbers = [spec.login, *(n for n in spec.webcall_extensions if n != spec.login)]
    ids = conn.execute(select(extension.c.id).where(extension.c.number.in_(numbers))).scalars()
    rows = conn.execute(phone_query().where(phone.c.extension_id.in_(list(ids)))
                        .order_by(extension.c.number, phone.c.position))
    return [
        {key: p[key] for key in ("model", "extension", "location", "position", "order",
                                 "enabled", "provisionable")}
        for p in map(phone_public, rows)
    ]
