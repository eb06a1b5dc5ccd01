"""Live registrations: the rows Kamailio's usrloc writes to the store's `location` table."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from mtctl.domain.ringing import PhoneKey
from mtctl.store.tables import extension, location, phone


@dataclass(frozen=True, slots=True)
class Registration:
    """A phone's newest live registration."""

    extension: str
    position: int
    last_modified: datetime
    user_agent: str


def live_registrations(conn: Connection, *, now: float | None = None
                       ) -> dict[PhoneKey, Registration]:
    """Every phone with a contact that has not expired at NOW (epoch seconds, default: now).

    usrloc writes expires and last_modified as epoch seconds (expires_type = 1), so no time
    zone of Kamailio, the database or mtctl enters the comparison.
    """
    epoch = int(time.time() if now is None else now)
    rows = conn.execute(
        select(extension.c.number, phone.c.position, location.c.last_modified,
               location.c.user_agent)
        .join(phone, phone.c.sip_auth_user == location.c.username)
        .join(extension, extension.c.id == phone.c.extension_id)
        .where(location.c.expires > epoch))
    found: dict[PhoneKey, Registration] = {}
    for number, position, modified, agent in rows:
        when = datetime.fromtimestamp(int(modified), UTC)
        key = (number, position)
        if key not in found or when > found[key].last_modified:
            found[key] = Registration(number, position, when, agent or "")
    return found
