"""Read the store as the reconstruction sees it, and rebuild it as it was at an earlier time."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mtctl.domain.history import AuditRow, State, normalized, roll_back
from mtctl.store.catalog import list_groups, list_models, list_templates
from mtctl.store.phones import public as phone_public
from mtctl.store.snapshots import phone_query
from mtctl.store.tables import audit_log, extension, node
from mtctl.store.users import list_users
from mtctl.store.webcall import list_sessions


def current_state(conn: Connection) -> State:
    """Every tracked object of the store now, as the audit trail names and records it."""
    state: State = {}
    for row in conn.execute(select(extension.c.number, node.c.name.label("node"),
                                   extension.c.display_name, extension.c.ring_timeout)
                            .join(node, node.c.id == extension.c.node_id)):
        state[f"extension {row.number}"] = normalized(row._asdict(), "extension")
    for row in conn.execute(phone_query()):
        item = phone_public(row)
        state[f"phone {item['extension']}:{item['position']}"] = normalized(item, "phone")
    for user in list_users(conn):
        state[f"user {user['username']}"] = normalized(user, "user")
    for group in list_groups(conn):
        state[f"group {group['name']}"] = normalized(group, "group")
    for model in list_models(conn):
        state[f"model {model['name']}"] = normalized(model, "model")
    for item in list_templates(conn):
        state[f"template {item['name']}"] = normalized(item, "template")
    for session in list_sessions(conn):
        state[f"webcall {session['user']}"] = normalized(session, "webcall")
    return state


def audit_after(conn: Connection, *, after_id: int | None = None,
                after: datetime | None = None) -> list[AuditRow]:
    """Audit rows written after an audit id, or after a time."""
    query = select(audit_log).order_by(audit_log.c.id)
    if after_id is not None:
        query = query.where(audit_log.c.id > after_id)
    if after is not None:
        query = query.where(audit_log.c.at > after)
    return [AuditRow(id=row.id, at=row.at.replace(tzinfo=row.at.tzinfo or UTC)
                     .isoformat(timespec="seconds"),
                     actor=row.actor, action=row.action, object=row.object,
                     changes=row.changes or {})
            for row in conn.execute(query)]


def state_at(conn: Connection, when: datetime) -> State:
    """The tracked objects as they were at WHEN (UTC)."""
    return roll_back(current_state(conn), audit_after(conn, after=when))


def state_after_audit(conn: Connection, audit_id: int) -> State:
    """The tracked objects as they were right after audit row AUDIT_ID was written."""
    return roll_back(current_state(conn), audit_after(conn, after_id=audit_id))
