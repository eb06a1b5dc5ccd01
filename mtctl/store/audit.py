"""The audit trail: one row per change, written in the change's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import String, insert, select
from sqlalchemy.engine import Connection

from mtctl.store.rows import as_utc as as_utc  # re-exported: every store module uses it
from mtctl.store.tables import audit_log

# The longest object name the trail holds (its column's length).
OBJECT_MAX: int = cast(String, audit_log.c.object.type).length or 0
# Fields whose values never reach the audit trail, whatever a caller passes.
SECRET_FIELDS = frozenset({"ha1", "ha1_sha256", "password", "token", "token_hash"})


def utcnow() -> datetime:
    return datetime.now(UTC)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """Changed fields as {field: [before, after]}, secrets left out."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if key not in SECRET_FIELDS and before.get(key) != after.get(key)
    }


def record(conn: Connection, *, actor: str, action: str, obj: str,
           changes: dict[str, Any] | None = None) -> None:
    """Write one audit row."""
    clean = {k: v for k, v in (changes or {}).items() if k not in SECRET_FIELDS}
    conn.execute(insert(audit_log).values(at=utcnow(), actor=actor, action=action, object=obj,
                                          changes=clean or None))


def list_audit(conn: Connection, *, since: datetime | None = None,
               obj: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Audit rows, oldest first, optionally since a time and for one object (or its prefix);
    with LIMIT, only the LIMIT most recent of them (as `tail` would), still oldest first."""
    query = select(audit_log)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if obj is not None:
        query = query.where((audit_log.c.object == obj) | audit_log.c.object.startswith(
            obj + ":", autoescape=True))
    if limit is None:
        rows = list(conn.execute(query.order_by(audit_log.c.id)))
    else:
        rows = list(conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit)))[::-1]
    return [
        {"id": row.id, "at": as_utc(row.at).isoformat(timespec="seconds"), "actor": row.actor,
         "action": row.action, "object": row.object, "changes": row.changes or {}}
        for row in rows
    ]
