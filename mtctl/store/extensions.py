"""Extensions: dialable numbers, each on one node, each with up to eight phones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from mtctl.domain.model import DEFAULT_RING_TIMEOUT
from mtctl.domain.plan import EXTENSION_FIELDS
from mtctl.domain.rules import Violation, extension_number_violation
from mtctl.domain.updates import UNCHANGED, ExtensionUpdate
from mtctl.errors import Conflict, NotFound, RuleViolation, UsageError
from mtctl.store import audit
from mtctl.store.catalog import id_by_name
from mtctl.store.lookup import inserted_id, require_extension
from mtctl.store.snapshots import phone_query, users_touching
from mtctl.store.tables import (
    app_user,
    extension,
    node,
    phone,
    user_webcall_extension,
    webcall_group,
    webcall_group_extension,
)
from mtctl.store.validate import check_text, enforce
from mtctl.store.webcall import end_invalid_sessions

if TYPE_CHECKING:
    from mtctl.store.rows import AnyRow


def _check_number(number: str) -> None:
    problem = extension_number_violation(number)
    if problem:
        raise RuleViolation([problem])


def _check_timeout(seconds: int | None) -> None:
    if seconds is not None and not 1 <= seconds <= 600:
        raise UsageError(f"ring timeout {seconds} s is out of range",
                         "use 1 to 600 seconds, e.g. --ring-timeout 20")


def add_extension(conn: Connection, *, actor: str, number: str, node_name: str,
                  display_name: str | None = None, ring_timeout: int | None = None) -> int:
    _check_number(number)
    _check_timeout(ring_timeout)
    node_id = id_by_name(conn, "node", node_name)
    if conn.execute(select(extension.c.id).where(extension.c.number == number)).first():
        raise Conflict(f"MT014 extension {number} already exists",
                       f"see: mtctl ext show {number}")
    values = {"number": number, "node_id": node_id, "display_name": display_name,
              "ring_timeout": ring_timeout or DEFAULT_RING_TIMEOUT}
    check_text(extension, values)
    ext_id = inserted_id(conn.execute(insert(extension).values(**values)))
    audit.record(conn, actor=actor, action="add", obj=f"extension {number}",
                 changes={"node": [None, node_name], "display_name": [None, display_name],
                          "ring_timeout": [None, values["ring_timeout"]]})
    return ext_id


def _public_query() -> Select[Any]:
    phones = (select(phone.c.extension_id, func.count().label("n"))
              .group_by(phone.c.extension_id).subquery())
    return (
        select(extension.c.id, extension.c.number, node.c.name.label("node"),
               extension.c.display_name, extension.c.ring_timeout,
               app_user.c.username.label("owner"), func.coalesce(phones.c.n, 0).label("phones"))
        .join(node, node.c.id == extension.c.node_id)
        .outerjoin(app_user, app_user.c.login_extension_id == extension.c.id)
        .outerjoin(phones, phones.c.extension_id == extension.c.id)
    )


def _public(row: AnyRow) -> dict[str, Any]:
    return {"number": row.number, "node": row.node, "display_name": row.display_name,
            "ring_timeout": row.ring_timeout, "owner": row.owner, "phones": row.phones}


def list_extensions(conn: Connection, *, node_name: str | None = None) -> list[dict[str, Any]]:
    query = _public_query().order_by(extension.c.number)
    if node_name is not None:
        query = query.where(extension.c.node_id == id_by_name(conn, "node", node_name))
    return [_public(row) for row in conn.execute(query)]


def get_extension(conn: Connection, number: str) -> dict[str, Any]:
    row = conn.execute(_public_query().where(extension.c.number == number)).first()
    if row is None:
        raise NotFound(f"unknown extension {number!r}", "see: mtctl ext list")
    return _public(row)


def update_extension(conn: Connection, *, actor: str, number: str,
                     change: ExtensionUpdate) -> None:
    """Change an extension; moving it to another node moves its phones too (MT008) and drops
    their registrations (they register again at the new node)."""
    ext_id = require_extension(conn, number)
    before = get_extension(conn, number)
    values: dict[str, Any] = {}
    if change.display_name is not UNCHANGED:
        values["display_name"] = change.display_name or None
    if change.ring_timeout is not UNCHANGED:
        _check_timeout(change.ring_timeout)
        values["ring_timeout"] = change.ring_timeout
    if change.node is not UNCHANGED and change.node != before["node"]:
        from mtctl.store.live import drop_registrations

        node_id = id_by_name(conn, "node", change.node)
        values["node_id"] = node_id
        conn.execute(update(phone).where(phone.c.extension_id == ext_id).values(node_id=node_id))
        # SPEC §8: the old node refuses the phones' next REGISTER and the new one accepts it;
        # in the same transaction, the registrations the old node held are gone.
        drop_registrations(conn, [ext_id])
    if values:
        check_text(extension, values)
        conn.execute(update(extension).where(extension.c.id == ext_id).values(**values))
    after = get_extension(conn, number)
    changes = audit.diff(before, after)
    if changes:
        audit.record(conn, actor=actor, action="set", obj=f"extension {number}", changes=changes)
    enforce(conn, extension_ids=[ext_id])


def remove_extension(conn: Connection, *, actor: str, number: str) -> None:
    """Remove an extension and its phones, unless a user still depends on it."""
    ext_id = require_extension(conn, number)
    login_users = conn.execute(select(app_user.c.username)
                               .where(app_user.c.login_extension_id == ext_id)).scalars().all()
    webcall_users = conn.execute(
        select(app_user.c.username)
        .join(user_webcall_extension, user_webcall_extension.c.user_id == app_user.c.id)
        .where(user_webcall_extension.c.extension_id == ext_id)).scalars().all()
    problems = [Violation("MT012", f"user {name}", f"logs in with extension {number}",
                          f"remove the user or change its --login before removing {number}")
                for name in login_users]
    problems += [Violation("MT010", f"user {name}", f"uses {number} as its Web Call extension",
                           f"change the user's --webcall-ext before removing {number}")
                 for name in webcall_users]
    if problems:
        raise RuleViolation(problems)
    pool_users = users_touching(conn, [ext_id])
    phones = [{"position": row.position, "order": row.ring_order, "enabled": bool(row.enabled),
               "model": row.model, "template": row.template, "category": row.category,
               "location": row.location, "secure": bool(row.secure),
               "publishable": bool(row.publishable)}
              for row in conn.execute(phone_query().where(phone.c.extension_id == ext_id)
                                      .order_by(phone.c.position))]
    before = get_extension(conn, number)
    groups = _groups_of(conn, ext_id)
    conn.execute(delete(webcall_group_extension)
                 .where(webcall_group_extension.c.extension_id == ext_id))
    for name, members in groups:
        audit.record(conn, actor=actor, action="rm-ext", obj=f"group {name}",
                     changes={"extensions": [members, [n for n in members if n != number]]})
    end_invalid_sessions(conn, actor=actor, user_ids=pool_users)  # a pool session there
    conn.execute(delete(phone).where(phone.c.extension_id == ext_id))
    conn.execute(delete(extension).where(extension.c.id == ext_id))
    for item in phones:
        audit.record(conn, actor=actor, action="remove",
                     obj=f"phone {number}:{item['position']}", changes=audit.diff(item, {}))
    audit.record(conn, actor=actor, action="remove", obj=f"extension {number}",
                 changes=audit.diff({k: before[k] for k in EXTENSION_FIELDS}, {}))
    enforce(conn, user_ids=pool_users)


def _groups_of(conn: Connection, ext_id: int) -> list[tuple[str, list[str]]]:
    """The Web Call groups holding an extension, each with its members in rank order."""
    from mtctl.store.catalog import group_extensions

    rows = conn.execute(select(webcall_group.c.id, webcall_group.c.name)
                        .join(webcall_group_extension,
                              webcall_group_extension.c.group_id == webcall_group.c.id)
                        .where(webcall_group_extension.c.extension_id == ext_id)
                        .order_by(webcall_group.c.name)).all()
    return [(name, group_extensions(conn, group_id)) for group_id, name in rows]
