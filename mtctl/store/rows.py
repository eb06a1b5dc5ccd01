"""Rows as the driver returns them, turned into the values commands show: no SQLAlchemy here,
so the read layer (store/reader.py) and the Core path build phones the same way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, overload

from mtctl.domain.model import PhoneSpec
from mtctl.domain.rules import provisioning_violation

if TYPE_CHECKING:
    from typing import TypeAlias

    from sqlalchemy.engine import Connection, Row
    from sqlalchemy.sql.expression import ClauseElement

    AnyRow: TypeAlias = Row[*tuple[Any, ...]]  # a result row of any width

# The columns of a phone row, in order: snapshots.phone_query() selects them under these
# labels, reader.PHONE_SQL in this order (a test holds the two together).
PHONE_COLUMNS = (
    "id", "extension_id", "number", "position", "ring_order", "enabled", "model", "kind",
    "vendor", "qr_provisionable", "template", "for_webcall", "secure", "publishable", "node",
    "location", "category", "sip_auth_user", "has_key", "key_expires_at", "profile", "mac",
    "key_delivered_at", "key_delivered_to",
)
TIME_COLUMNS = tuple(PHONE_COLUMNS.index(c) for c in ("key_expires_at", "key_delivered_at"))


def rows_of(conn: Connection, query: ClauseElement) -> list[tuple[Any, ...]]:
    """Rows of a query without parameters, as the driver returns them: the bulk reads skip
    SQLAlchemy's per-row work."""
    sql = str(query.compile(dialect=conn.dialect))
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None, "a connection in use has its driver connection"
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Datetimes come back naive from SQLite; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def phone_spec_of(row: Sequence[Any]) -> PhoneSpec:
    """A phone row (PHONE_COLUMNS, in order) as the rules and the ring function see it."""
    (_, _, number, position, order, enabled, model, kind, vendor, qr, template_name, for_webcall,
     secure, publishable, node, location, category, _, has_key, expires, profile, _,
     delivered, _) = row
    return PhoneSpec(number, position, order, model, kind, vendor, bool(qr), bool(enabled),
                     template_name, bool(for_webcall), bool(secure), bool(publishable), node,
                     location, category, bool(has_key), as_utc(expires), profile,
                     delivered is not None)


def public_phone(row: Sequence[Any]) -> dict[str, Any]:
    """A phone row (PHONE_COLUMNS, in order) as listings and --json show it: never a digest."""
    spec = phone_spec_of(row)
    expires = spec.key_expires_at
    delivered = as_utc(row[22])
    return {
        "extension": spec.extension, "position": spec.position, "order": spec.order,
        "enabled": spec.enabled, "model": spec.model, "kind": spec.kind,
        "template": spec.template, "category": spec.category, "location": spec.location,
        "secure": spec.secure, "publishable": spec.publishable, "node": spec.node,
        "sip_auth_user": row[17], "has_key": spec.has_key,
        "key_expires_at": expires.isoformat(timespec="seconds") if expires else None,
        "provisionable": provisioning_violation(spec) is None,
        "mac": row[21],
        "key_delivered_at": delivered.isoformat(timespec="seconds") if delivered else None,
        "key_delivered_to": row[23],
    }
