"""Desk phones by MAC (SPEC §9): the device password, looking a phone up by its MAC, and
rotate-on-fetch (a fresh key in every file served, kept here only as digests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ScalarSelect,
    Select,
    bindparam,
    case,
    delete,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection

from mtctl.domain import keys
from mtctl.domain.config_keys import SECRETS as SECRETS
from mtctl.domain.config_keys import SETTINGS
from mtctl.domain.devices import DEVICE_PROFILES, DeviceAccount, proxy_address
from mtctl.domain.nodes import phone_proxy
from mtctl.errors import UsageError
from mtctl.store import audit
from mtctl.store.db import Store
from mtctl.store.rows import as_utc
from mtctl.store.tables import (
    audit_log,
    extension,
    node,
    phone,
    phone_model,
    secret,
    setting,
    template,
)

DEVICE_PASSWORD = SECRETS[0]
MIN_SECRET, MAX_SECRET = 12, 256
ACTOR = "provisioning"


_HASHER_LOCK = threading.Lock()


@cache
def _hasher() -> Any:
    # passlib.hash loads its schemes lazily, and not safely from several threads at once.
    with _HASHER_LOCK:
        from passlib.hash import argon2  # imported on first use: a slow import

        return argon2


def set_secret(conn: Connection, *, actor: str, name: str, value: str, now: datetime) -> None:
    """Keep a secret mtctl checks as a passlib argon2 hash, never the secret itself."""
    if name not in SECRETS:
        raise UsageError(f"unknown secret {name[:64]!r}", "known secrets: " + ", ".join(SECRETS))
    if not MIN_SECRET <= len(value) <= MAX_SECRET:
        raise UsageError(f"{name} needs {MIN_SECRET} to {MAX_SECRET} characters; this one has "
                         f"{len(value)}", "use a long random passphrase")
    hashed = _hasher().hash(value)
    conn.execute(delete(secret).where(secret.c.key == name))
    conn.execute(insert(secret).values(key=name, hash=hashed, set_at=now))
    audit.record(conn, actor=actor, action="set-secret", obj=f"config {name}")


def verify_secret(value: str, hashed: str | None) -> bool:
    """VALUE against a stored hash; as slow when nothing is stored, so time tells nothing."""
    if hashed is None:
        _hasher().verify(value, _dummy_hash())
        return False
    return bool(_hasher().verify(value, hashed))


def warm_up() -> None:
    """Load the hasher and make the stand-in hash before threads need them (mtctl serve)."""
    _dummy_hash()


@cache
def _dummy_hash() -> str:
    return str(_hasher().hash("not the device password"))


# --- looking a phone up by MAC ------------------------------------------------------------

def _setting(name: str) -> ScalarSelect[Any]:
    return select(setting.c.value).where(setting.c.key == name).scalar_subquery()


def credentials_query() -> Select[Any]:
    """The device user (stored or default) and the device password's hash, in one row."""
    return select(_setting("provisioning.device_user").label("user"),
                  select(secret.c.hash).where(secret.c.key == DEVICE_PASSWORD)
                  .scalar_subquery().label("hash"))


def phone_by_mac_query() -> Select[Any]:
    """The phone with a MAC, and what its file needs: one indexed query."""
    return phones_query().where(phone.c.mac == bindparam("mac"))


def phones_query() -> Select[Any]:
    """Phones with what their files need."""
    return (
        select(phone.c.id, extension.c.number, phone.c.position, phone.c.enabled,
               phone.c.secure, phone.c.publishable, phone.c.sip_auth_user, phone.c.mac,
               phone_model.c.profile, extension.c.display_name, template.c.key_lifetime_days,
               node.c.sip_address.label("node_address"),
               _setting("sip.domain").label("s_domain"),
               _setting("sip.realm").label("s_realm"),
               _setting("sip.proxy").label("s_proxy"),
               _setting("flexisip.proxy").label("s_flexisip"),
               _setting("provisioning.resync_hours").label("s_resync"),
               _setting("keys.lifetime_days").label("s_lifetime"),
               _setting("keys.grace_days").label("s_grace"))
        .join(extension, extension.c.id == phone.c.extension_id)
        .join(phone_model, phone_model.c.id == phone.c.model_id)
        .join(template, template.c.id == phone.c.template_id)
        .join(node, node.c.id == phone.c.node_id)
    )


@dataclass(frozen=True, slots=True)
class Device:
    """A phone found by its MAC, as the endpoint needs it."""

    phone_id: int
    ref: str  # number:position
    mac: str
    profile: str | None
    enabled: bool
    secure: bool
    realm: str | None
    account: DeviceAccount | None  # None: the SIP domain is not set
    lifetime_days: int
    grace_days: int

    def serves(self, profile: str) -> bool:
        """Whether a request for this profile's file may get it."""
        return (self.enabled and self.profile == profile and profile in DEVICE_PROFILES
                and self.account is not None and (not self.secure or self.realm is not None))


def _int(name: str, stored: str | None) -> int:
    """A whole-number setting as stored, or its default when unset or out of range."""
    rule = SETTINGS[name]
    try:
        return int(rule.parse(stored)) if stored is not None else int(rule.default or 0)
    except ValueError:
        return int(rule.default or 0)


def device_of(row: Any) -> Device:
    m = row._mapping
    domain = m["s_domain"]
    lifetime = m["key_lifetime_days"] or _int("keys.lifetime_days", m["s_lifetime"])
    account = None
    # The extension's node (SPEC §8), the Flexisip edge when publishable; None: not served.
    proxy = phone_proxy(publishable=bool(m["publishable"]), edge=m["s_flexisip"],
                        node_address=m["node_address"], site_proxy=m["s_proxy"],
                        domain=domain) if domain is not None else None
    if domain is not None and proxy is not None:
        host, port, transport = proxy_address(proxy, domain)
        account = DeviceAccount(
            auth_user=m["sip_auth_user"], domain=domain, proxy_host=host, proxy_port=port,
            transport=transport, display_name=m["display_name"] or m["number"],
            resync_hours=_int("provisioning.resync_hours", m["s_resync"]))
    return Device(phone_id=m["id"], ref=f"{m['number']}:{m['position']}", mac=m["mac"],
                  profile=m["profile"], enabled=bool(m["enabled"]), secure=bool(m["secure"]),
                  realm=m["s_realm"] or domain, account=account, lifetime_days=lifetime,
                  grace_days=_int("keys.grace_days", m["s_grace"]))


def lookup_query() -> Select[Any]:
    """One row whatever the MAC: the device credentials, and the phone with that MAC (its
    columns NULL when there is none), so every request runs the same query."""
    credentials = credentials_query().subquery("c")
    found = phone_by_mac_query().subquery("p")
    return (select(credentials.c.user.label("c_user"), credentials.c.hash.label("c_hash"),
                   *found.c)
            .select_from(credentials.outerjoin(found, true())))


# --- rotate-on-fetch ------------------------------------------------------------------------

def deliver_keys(conn: Connection, wanted: list[tuple[str, str, str]], *, now: datetime,
                 new_passwords: Callable[[int], list[str]] = keys.new_passwords,
                 ) -> list[tuple[Device, str] | None]:
    """Give each secure phone asked for, (mac, profile, client address), a fresh key for the
    file being served; the answers in the same order (None: that phone may not be served).

    Inside the caller's write transaction: the phones are read again under the store's write
    lock (they may have changed since the lookup); each one's current key becomes its
    previous one for keys.grace_days, and only the new key's digests are stored, with one
    audit row per key. The clear keys are returned for those responses and kept nowhere.
    """
    macs = sorted({mac for mac, _, _ in wanted})
    rows = conn.execute(_phones_by_macs(), {"macs": macs}).all()
    found = {row.mac: device_of(row) for row in rows}
    # What each audit row says was there before: the last delivery, even one in this batch.
    last = {row.mac: (row.key_delivered_to, _text(as_utc(row.key_expires_at))) for row in rows}
    passwords = iter(new_passwords(len(wanted)))
    answers: list[tuple[Device, str] | None] = []
    updates: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    grace = None
    for mac, profile, client in wanted:
        device = found.get(mac)
        password = next(passwords)
        if device is None or not device.serves(profile) or not device.secure \
                or device.realm is None or device.account is None:
            answers.append(None)
            continue
        ha1, ha1_sha256 = keys.digests(device.account.auth_user, device.realm, password)
        expires = now + timedelta(days=device.lifetime_days)
        grace = device.grace_days
        updates.append({"b_id": device.phone_id, "b_ha1": ha1, "b_sha256": ha1_sha256,
                        "b_expires": expires, "b_now": now, "b_client": client[:64],
                        "b_until": now + timedelta(days=device.grace_days)})
        delivered_to, expires_text = last[mac]
        last[mac] = client[:64], _text(expires)
        audits.append({"at": now, "actor": ACTOR, "action": "deliver-key",
                       "object": f"phone {device.ref}",
                       "changes": {"delivered_to": [delivered_to, last[mac][0]],
                                   "key_expires_at": [expires_text, last[mac][1]]}})
        answers.append((device, password))
    if updates:
        # Row by row, in order: each UPDATE reads the row as the one before left it, so two
        # fetches of one phone in a batch keep the first's key as the previous one.
        conn.execute(DELIVER if grace else DELIVER_NO_GRACE, updates)
        conn.execute(insert(audit_log), audits)
    return answers


@cache
def _phones_by_macs() -> Select[Any]:
    return (phones_query().add_columns(phone.c.key_delivered_to, phone.c.key_expires_at)
            .where(phone.c.mac.in_(bindparam("macs", expanding=True))))


def _text(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment is not None else None


_HAD_KEY = phone.c.ha1.is_not(None)
_NEW_KEY: dict[str, Any] = {
    "ha1": bindparam("b_ha1"), "ha1_sha256": bindparam("b_sha256"),
    "key_expires_at": bindparam("b_expires", type_=phone.c.key_expires_at.type),
    "key_updated_at": bindparam("b_now", type_=phone.c.key_updated_at.type),
    "key_delivered_at": bindparam("b_now", type_=phone.c.key_delivered_at.type),
    "key_delivered_to": bindparam("b_client"), "key_due_at": None}
DELIVER = update(phone).where(phone.c.id == bindparam("b_id")).values(
    prev_ha1=case((_HAD_KEY, phone.c.ha1), else_=phone.c.prev_ha1),
    prev_ha1_sha256=case((_HAD_KEY, phone.c.ha1_sha256), else_=phone.c.prev_ha1_sha256),
    prev_key_valid_until=case(
        (_HAD_KEY, bindparam("b_until", type_=phone.c.prev_key_valid_until.type)),
        else_=phone.c.prev_key_valid_until),
    **_NEW_KEY)
DELIVER_NO_GRACE = update(phone).where(phone.c.id == bindparam("b_id")).values(
    prev_ha1=None, prev_ha1_sha256=None, prev_key_valid_until=None, **_NEW_KEY)


# --- keys rotate ------------------------------------------------------------------------------

def mark_due_keys(store: Store, *, actor: str, now: datetime, within: timedelta,
                  dry_run: bool = False) -> list[dict[str, Any]]:
    """Mark the due keys of desk phones provisioned by MAC: their next fetch brings the new key
    (a key made now would reach no phone). Marked once per due period: the mark stays until
    the fetch that replaces the key. One write transaction, one audit row per phone."""
    from mtctl.store.keys import _key_due, rotates_on_fetch

    query = (select(phone.c.id, extension.c.number, phone.c.position)
             .join(extension, extension.c.id == phone.c.extension_id)
             .where(phone.c.secure.is_(True), rotates_on_fetch(),
                    phone.c.key_due_at.is_(None),
                    or_(phone.c.ha1.is_(None), _key_due(now, within, store.dialect)))
             .order_by(extension.c.number, phone.c.position))
    with (store.read() if dry_run else store.write()) as conn:
        rows = conn.execute(query).all()
        if rows and not dry_run:
            ids = [row.id for row in rows]
            for start in range(0, len(ids), 1000):
                conn.execute(update(phone).where(phone.c.id.in_(ids[start:start + 1000]))
                             .values(key_due_at=now))
            conn.execute(insert(audit_log), [
                {"at": now, "actor": actor, "action": "mark-key-due",
                 "object": f"phone {row.number}:{row.position}", "changes": None}
                for row in rows])
    return [{"extension": row.number, "position": row.position} for row in rows]
