"""Provisioning tokens as `mtctl provision` manages them: issue one for a phone (replacing any
earlier one), revoke it, read its status. Redeeming them is `mtctl serve`'s (provisioning.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from mtctl.domain import provisioning
from mtctl.domain.rules import provisioning_violation
from mtctl.errors import NotFound, RuleViolation, UsageError
from mtctl.store import audit, config
from mtctl.store.audit import as_utc
from mtctl.store.phones import get_phone_spec
from mtctl.store.tables import extension, phone, provisioning_token


def _phone_id(conn: Connection, number: str, position: int) -> int:
    phone_id: int = conn.execute(
        select(phone.c.id).join(extension, extension.c.id == phone.c.extension_id)
        .where(extension.c.number == number, phone.c.position == position)).scalar_one()
    return phone_id


def issue_token(conn: Connection, *, actor: str, number: str, position: int,
                now: datetime) -> tuple[str, str, datetime]:
    """A new token for the phone, replacing any earlier one: (token, URL, redeem-by time)."""
    spec = get_phone_spec(conn, number, position)
    refused = provisioning_violation(spec)
    if refused:
        raise RuleViolation([refused])
    base_url = config.get_value(conn, "provisioning.base_url")
    if base_url is None:
        raise UsageError("the provisioning base URL is not configured",
                         "run: mtctl config set provisioning.base_url https://prov.example.com/p")
    if spec.publishable and config.get_value(conn, "flexisip.proxy") is None:
        raise UsageError(f"phone {spec.ref} is publishable but no Flexisip edge proxy is set",
                         "run: mtctl config set flexisip.proxy "
                         "'sip:edge.example.com;transport=tls'")
    config.require_realm(conn)
    phone_id = _phone_id(conn, number, position)
    ttl = timedelta(hours=config.int_value(conn, "provisioning.token_ttl_hours"))
    token = provisioning.new_token()
    conn.execute(delete(provisioning_token).where(provisioning_token.c.phone_id == phone_id))
    conn.execute(insert(provisioning_token).values(
        phone_id=phone_id, token_hash=provisioning.token_hash(token), created_at=now,
        redeem_by=now + ttl))
    audit.record(conn, actor=actor, action="provision", obj=f"phone {number}:{position}",
                 changes={"redeem_by": [None, (now + ttl).isoformat(timespec="seconds")]})
    return token, provisioning.provisioning_url(base_url, token), now + ttl


def revoke_token(conn: Connection, *, actor: str, number: str, position: int) -> None:
    get_phone_spec(conn, number, position)  # NotFound for an unknown phone
    gone = conn.execute(delete(provisioning_token).where(
        provisioning_token.c.phone_id == _phone_id(conn, number, position))).rowcount
    if not gone:
        raise NotFound(f"phone {number}:{position} has no provisioning token",
                       f"nothing to revoke; provision it with: mtctl provision {number} "
                       f"{position}")
    audit.record(conn, actor=actor, action="revoke-provisioning",
                 obj=f"phone {number}:{position}")


def token_status(conn: Connection, number: str, position: int) -> dict[str, Any] | None:
    row = conn.execute(select(provisioning_token).where(
        provisioning_token.c.phone_id == _phone_id(conn, number, position))).first()
    if row is None:
        return None
    return {"created_at": as_utc(row.created_at).isoformat(timespec="seconds"),
            "redeem_by": as_utc(row.redeem_by).isoformat(timespec="seconds"),
            "redeemed_at": (as_utc(row.redeemed_at).isoformat(timespec="seconds")
                            if row.redeemed_at else None),
            "device": row.device}
