"""Live registrations: the rows Kamailio's usrloc writes to the store's `location` table."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from mtctl.domain.calls import utc
from mtctl.domain.ringing import PhoneKey
from mtctl.store.tables import extension, location, node, phone


@dataclass(frozen=True, slots=True)
class Registration:
    """A phone's newest live registration."""

    extension: str
    position: int
    last_modified: datetime
    user_agent: str
    node: str | None = None  # the node whose Kamailio holds it (None: the single proxy)


def live_registrations(conn: Connection, *, now: float | None = None
                       ) -> dict[PhoneKey, Registration]:
    """Every phone with a contact that has not expired at NOW (epoch seconds, default: now).

    usrloc writes expires and last_modified as epoch seconds (expires_type = 1), so no time
    zone of Kamailio, the database or mtctl enters the comparison.
    """
    epoch = int(time.time() if now is None else now)
    rows = conn.execute(
        select(extension.c.number, phone.c.position, location.c.last_modified,
               location.c.user_agent, node.c.name)
        .join(phone, phone.c.sip_auth_user == location.c.username)
        .join(extension, extension.c.id == phone.c.extension_id)
        .outerjoin(node, node.c.id == location.c.server_id)
        .where(location.c.expires > epoch))
    found: dict[PhoneKey, Registration] = {}
    for number, position, modified, agent, node_name in rows:
        when = utc(int(modified) * 1000)
        key = (number, position)
        if key not in found or when > found[key].last_modified:
            found[key] = Registration(number, position, when, agent or "", node_name)
    return found


def drop_registrations(conn: Connection, extension_ids: Collection[int]) -> int:
    """Forget every registration of these extensions' phones (an extension moved to another
    node: its old node must not hold them any more); returns how many contacts went."""
    if not extension_ids:
        return 0
    users = select(phone.c.sip_auth_user).where(phone.c.extension_id.in_(extension_ids))
    return conn.execute(delete(location).where(location.c.username.in_(users))).rowcount or 0


def registered_at(conn: Connection, auth_user: str, *, now: float | None = None) -> str | None:
    """The node whose Kamailio holds AUTH_USER's newest live registration ("" for the
    single-proxy export), or None when it has none."""
    epoch = int(time.time() if now is None else now)
    row = conn.execute(
        select(node.c.name).select_from(location)
        .outerjoin(node, node.c.id == location.c.server_id)
        .where(location.c.username == auth_user, location.c.expires > epoch)
        .order_by(location.c.last_modified.desc()).limit(1)).first()
    return None if row is None else (row[0] or "")
