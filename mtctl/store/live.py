"""Live registrations: the rows Kamailio's usrloc writes to the store's `location` table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
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


def live_registrations(conn: Connection) -> dict[PhoneKey, Registration]:
    """Every phone with a contact that has not expired, with its newest registration."""
    if conn.dialect.name == "sqlite":
        # db_sqlite writes Julian day numbers; julianday() and datetime() read them (and text).
        expires = func.julianday(location.c.expires)
        alive = expires > func.julianday("now")
        modified = func.datetime(location.c.last_modified)
    else:
        # db_postgres writes the Kamailio host's local time into a column without time zone.
        alive = location.c.expires > func.localtimestamp()
        modified = location.c.last_modified
    rows = conn.execute(
        select(extension.c.number, phone.c.position, modified.label("modified"),
               location.c.user_agent)
        .join(phone, phone.c.sip_auth_user == location.c.username)
        .join(extension, extension.c.id == phone.c.extension_id)
        .where(alive))
    found: dict[PhoneKey, Registration] = {}
    for number, position, modified_at, agent in rows:
        when = _as_utc(modified_at)
        key = (number, position)
        if key not in found or when > found[key].last_modified:
            found[key] = Registration(number, position, when, agent or "")
    return found


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite's datetime(): UTC text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    # PostgreSQL: naive local time of the host that registered it (astimezone reads it so)
    return value.astimezone(UTC)
