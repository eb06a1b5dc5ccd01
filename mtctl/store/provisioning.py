"""Provisioning tokens: issue, revoke, and redeem them for a phone's account."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from mtctl.domain import provisioning
from mtctl.domain.provisioning import Account
from mtctl.domain.rules import provisioning_violation
from mtctl.errors import NotFound, RuleViolation, UsageError
from mtctl.store import audit, config
from mtctl.store.audit import as_utc
from mtctl.store.phones import get_phone_spec
from mtctl.store.snapshots import phone_query
from mtctl.store.tables import extension, phone, provisioning_token


def _phone_id(conn: Connection, number: str, position: int) -> int:
    return conn.execute(select(phone.c.id).join(extension, extension.c.id == phone.c.extension_id)
                        .where(extension.c.number == number, phone.c.position == position)
                        ).scalar_one()


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


# What a client calls itself before it knows better (a fresh linphonec's first fetch says
# `Unknown/...`): such a fetch redeems the token but leaves it for the next one to bind.
ANONYMOUS_PRODUCTS = frozenset({"", "unknown"})


def _device(user_agent: str | None) -> str:
    """The product of a User-Agent (`Linphone/5.1 (...)` → `Linphone`): what a token binds to."""
    return (user_agent or "").split("/", 1)[0].strip()[:256]


def redeem(conn: Connection, *, token: str, now: datetime,
           user_agent: str | None) -> Account | None:
    """The account behind a live token, or None (unknown, expired, revoked or another device).

    The first fetch binds the token to the fetching device; later fetches by that device keep
    working, so a rotated key reaches the app on its next fetch.
    """
    if not provisioning.looks_like_token(token):
        return None
    row = conn.execute(
        select(provisioning_token).where(
            provisioning_token.c.token_hash == provisioning.token_hash(token))).first()
    if row is None:
        return None
    device = _device(user_agent)
    anonymous = device.lower() in ANONYMOUS_PRODUCTS
    if row.redeemed_at is None:
        if as_utc(row.redeem_by) < now:
            return None
        conn.execute(update(provisioning_token).where(provisioning_token.c.id == row.id)
                     .values(redeemed_at=now, device=None if anonymous else device))
    elif row.device is None and not anonymous:
        conn.execute(update(provisioning_token).where(provisioning_token.c.id == row.id)
                     .values(device=device))
    elif row.device is not None and row.device != device:
        return None
    account = account_for_phone(conn, row.phone_id)
    if account is not None and row.redeemed_at is None:
        spec_row = conn.execute(phone_query().where(phone.c.id == row.phone_id)).one()
        audit.record(conn, actor="provisioning", action="redeem",
                     obj=f"phone {spec_row.number}:{spec_row.position}",
                     changes={"device": [None, device]})
    return account


def account_for_phone(conn: Connection, phone_id: int) -> Account | None:
    """The phone's account as provisioning serves it, if the phone may still be provisioned."""
    row = conn.execute(phone_query().add_columns(phone.c.ha1, extension.c.display_name)
                       .where(phone.c.id == phone_id)).first()
    if row is None or row.ha1 is None:
        return None
    from mtctl.store.snapshots import phone_spec

    spec = phone_spec(row)
    if provisioning_violation(spec) is not None:
        return None
    domain = config.get_value(conn, "sip.domain")
    realm = config.get_value(conn, "sip.realm")
    if domain is None or realm is None:
        return None
    if spec.publishable:
        proxy = config.get_value(conn, "flexisip.proxy")
        if proxy is None:
            return None
        if "transport=" not in proxy:
            proxy += ";transport=tls"
    else:
        proxy = config.get_value(conn, "sip.proxy") or f"sip:{domain}"
    return Account(auth_user=row.sip_auth_user, ha1=row.ha1, realm=realm, domain=domain,
                   proxy=proxy, display_name=row.display_name)


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
