"""Phones: one device on one extension, at a position, ringing in an order."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from mtctl.domain import keys
from mtctl.domain.devices import DEVICE_PROFILES
from mtctl.domain.model import ExtensionSpec, PhoneSpec
from mtctl.domain.rules import extension_violations, password_violation
from mtctl.domain.updates import UNCHANGED, PhoneUpdate
from mtctl.domain.values import escape
from mtctl.errors import Conflict, NotFound, RuleViolation, UsageError
from mtctl.store import audit, config
from mtctl.store.catalog import id_by_name
from mtctl.store.lookup import require_extension
from mtctl.store.rows import public_phone
from mtctl.store.snapshots import extension_specs, phone_query, phone_spec
from mtctl.store.tables import app_user, extension, phone, phone_model, template
from mtctl.store.validate import check_text, enforce

if TYPE_CHECKING:
    from mtctl.store.rows import AnyRow


# A phone given a new key, or a new device: no key anybody may still hold (none before it,
# none delivered, none due). apply_writer.py clears the same columns.
NOT_DELIVERED = ("prev_ha1", "prev_ha1_sha256", "prev_key_valid_until", "key_delivered_at",
                 "key_delivered_to", "key_due_at")

def public(row: AnyRow) -> dict[str, Any]:
    """A phone as listings and --json show it: never a digest."""
    return public_phone(row)


def _row(conn: Connection, number: str, position: int) -> AnyRow:
    row = conn.execute(phone_query().where(extension.c.number == number,
                                           phone.c.position == position)).first()
    if row is None:
        require_extension(conn, number)
        raise NotFound(f"extension {number} has no phone at position {position}",
                       f"see: mtctl phone list {number}")
    return row


def get_phone(conn: Connection, number: str, position: int) -> dict[str, Any]:
    return public(_row(conn, number, position))


def show_phone(conn: Connection, number: str, position: int) -> dict[str, Any]:
    """A phone as `phone show` prints it: with the node its live registration is at (""
    for the single-proxy export), None while it is not registered."""
    from mtctl.store.live import registered_at

    item = get_phone(conn, number, position)
    return item | {"registered_at": registered_at(conn, item["sip_auth_user"])}


def get_phone_spec(conn: Connection, number: str, position: int) -> PhoneSpec:
    return phone_spec(_row(conn, number, position))


def list_phones(conn: Connection, *, number: str | None = None) -> list[dict[str, Any]]:
    """Phones of one extension, or of all, by extension then position."""
    query = phone_query().order_by(extension.c.number, phone.c.position)
    if number is not None:
        query = query.where(phone.c.extension_id == require_extension(conn, number))
    return [public(row) for row in conn.execute(query)]


def _model(conn: Connection, name: str) -> AnyRow:
    row = conn.execute(select(phone_model).where(phone_model.c.name == name)).first()
    if row is None:
        raise NotFound(f"unknown model {name!r}", "see: mtctl model list")
    return row


def _template(conn: Connection, name: str) -> AnyRow:
    row = conn.execute(select(template).where(template.c.name == name)).first()
    if row is None:
        raise NotFound(f"unknown template {name!r}", "see: mtctl template list")
    return row


def _refuse_if_broken(ext: ExtensionSpec, phones: tuple[PhoneSpec, ...]) -> None:
    """Check the state the extension would reach before touching the database."""
    found = extension_violations(dataclasses.replace(ext, phones=phones))
    if found:
        raise RuleViolation(found)


def _auth_user(conn: Connection, number: str, position: int) -> str:
    """A SIP auth user unique in the store."""
    def taken(candidate: str) -> bool:
        return conn.execute(select(phone.c.id).where(phone.c.sip_auth_user == candidate)
                            ).first() is not None

    return keys.sip_auth_user(number, position, taken)


def _lifetime(conn: Connection, template_row: AnyRow) -> int:
    return config.key_lifetime(conn, template_row.name, template_row.key_lifetime_days)


def _mac(conn: Connection, text: str | None, *, phone_id: int | None = None) -> str | None:
    """A MAC in any usual spelling as 12 lowercase hex digits ('' clears), unique in the store."""
    from mtctl.domain.devices import normalise_mac, shown_mac

    if not text:
        return None
    try:
        mac = normalise_mac(text)
    except ValueError as exc:
        raise UsageError(f"bad MAC address {escape(text[:40])!r}", f"use {exc}") from None
    holder = conn.execute(
        select(extension.c.number, phone.c.position, phone.c.id)
        .join(extension, extension.c.id == phone.c.extension_id).where(phone.c.mac == mac)
    ).first()
    if holder is not None and holder.id != phone_id:
        raise Conflict(f"MAC {shown_mac(mac)} is already used by phone "
                       f"{holder.number}:{holder.position}",
                       f"give that phone another MAC first (mtctl phone set {holder.number} "
                       f"{holder.position} --mac '')")
    return mac


def _key_values(key: keys.KeyDigests, now: datetime) -> dict[str, Any]:
    return {"ha1": key.ha1, "ha1_sha256": key.ha1_sha256, "key_expires_at": key.expires_at,
            "key_updated_at": now}


def add_phone(conn: Connection, *, actor: str, number: str, position: int, model: str,
              order: int = 1, enabled: bool = True, secure: bool = False,
              publishable: bool = False, template_name: str | None = None,
              category_name: str | None = None, location: str | None = None,
              node_name: str | None = None, mac: str | None = None,
              now: datetime | None = None) -> dict[str, Any]:
    """Add a phone; a secure phone gets its system key here (MT011)."""
    now = now or audit.utcnow()
    mac = _mac(conn, mac)
    ext_id = require_extension(conn, number)
    ext = extension_specs(conn, [ext_id])[ext_id]
    model_row = _model(conn, model)
    if template_name is None:
        template_name = "webfon" if model_row.kind == "webcall" else "default"
    template_row = _template(conn, template_name)
    category_id = (id_by_name(conn, "category", category_name) if category_name
                   else template_row.category_id)
    node_id = id_by_name(conn, "node", node_name or ext.node)
    secure = secure or bool(template_row.secure and model_row.kind != "webcall")
    auth_user = _auth_user(conn, number, position)
    key = None
    if secure:
        key = keys.system_key(auth_user, config.require_realm(conn), now=now,
                              lifetime_days=_lifetime(conn, template_row))
    spec = PhoneSpec(
        extension=number, position=position, order=order, model=model_row.name,
        kind=model_row.kind, vendor=model_row.vendor,
        qr_provisionable=bool(model_row.qr_provisionable), enabled=enabled,
        template=template_row.name, template_for_webcall=bool(template_row.for_webcall),
        secure=secure, publishable=publishable, node=node_name or ext.node,
        location=location, category=category_name, has_key=key is not None,
        key_expires_at=key.expires_at if key else None, profile=model_row.profile,
    )
    _refuse_if_broken(ext, (*ext.phones, spec))
    values = {
        "extension_id": ext_id, "node_id": node_id, "position": position, "ring_order": order,
        "enabled": enabled, "model_id": model_row.id, "template_id": template_row.id,
        "category_id": category_id, "location": location, "secure": secure,
        "publishable": publishable, "sip_auth_user": auth_user, "mac": mac,
    }
    check_text(phone, values)
    if key is not None:
        values |= _key_values(key, now)
    conn.execute(insert(phone).values(**values))
    enforce(conn, extension_ids=[ext_id])
    created = get_phone(conn, number, position)
    audit.record(conn, actor=actor, action="add", obj=f"phone {number}:{position}",
                 changes=audit.diff({}, created))
    return created


def update_phone(conn: Connection, *, actor: str, number: str, position: int,
                 change: PhoneUpdate, now: datetime | None = None,
                 action: str = "set") -> dict[str, Any]:
    """Change a phone (CHANGE's fields that are not UNCHANGED). Making it secure gives it a
    system key; making it not secure drops it."""
    now = now or audit.utcnow()
    row = _row(conn, number, position)
    before = public(row)
    ext_id = row.extension_id
    ext = extension_specs(conn, [ext_id])[ext_id]
    current = phone_spec(row)
    values: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    if change.position is not UNCHANGED and change.position != position:
        values["position"] = changed["position"] = change.position
    if change.order is not UNCHANGED:
        values["ring_order"] = changed["order"] = change.order
    if change.enabled is not UNCHANGED:
        values["enabled"] = changed["enabled"] = change.enabled
    if change.model is not UNCHANGED:
        model_row = _model(conn, change.model)
        values["model_id"] = model_row.id
        changed |= {"model": model_row.name, "kind": model_row.kind, "vendor": model_row.vendor,
                    "qr_provisionable": bool(model_row.qr_provisionable),
                    "profile": model_row.profile}
    template_name = None if change.template is UNCHANGED else change.template
    template_row = _template(conn, template_name or current.template)
    if template_name is not None:
        values["template_id"] = template_row.id
        changed |= {"template": template_row.name,
                    "template_for_webcall": bool(template_row.for_webcall)}
    if change.category is not UNCHANGED:
        values["category_id"] = (id_by_name(conn, "category", change.category)
                                 if change.category else None)
        changed["category"] = change.category or None
    if change.location is not UNCHANGED:
        values["location"] = changed["location"] = change.location or None
    if change.publishable is not UNCHANGED:
        values["publishable"] = changed["publishable"] = change.publishable
    if change.mac is not UNCHANGED:
        values["mac"] = _mac(conn, change.mac, phone_id=row.id)
    secure = change.secure
    rekey = secure is not UNCHANGED and secure != current.secure
    if rekey:
        values["secure"] = changed["secure"] = secure
    elif current.secure and values.get("mac", row.mac) != row.mac \
            and changed.get("profile", current.profile) in DEVICE_PROFILES:
        rekey = True  # another device: the keys the old one fetched must stop working
    if rekey:
        values |= dict.fromkeys(NOT_DELIVERED)
        if current.secure if secure is UNCHANGED else secure:
            key = keys.system_key(row.sip_auth_user, config.require_realm(conn), now=now,
                                  lifetime_days=_lifetime(conn, template_row))
            values |= _key_values(key, now)
            changed |= {"has_key": True, "key_expires_at": key.expires_at}
        else:
            values |= {"ha1": None, "ha1_sha256": None, "key_expires_at": None,
                       "key_updated_at": now}
            changed |= {"has_key": False, "key_expires_at": None}
    if not values:
        return before
    spec = dataclasses.replace(current, **changed)
    others = tuple(p for p in ext.phones if p.position != position)
    _refuse_if_broken(ext, (*others, spec))
    check_text(phone, values)
    conn.execute(update(phone).where(phone.c.id == row.id).values(**values))
    carried = []
    if "position" in values and current.is_webcall and spec.is_webcall:
        carried = _carry_webcall_position(conn, ext_id, position, spec.position)
    enforce(conn, extension_ids=[ext_id])
    after = get_phone(conn, number, spec.position)
    audit.record(conn, actor=actor, action=action, obj=f"phone {number}:{position}",
                 changes=audit.diff(before, after))
    for username in carried:
        audit.record(conn, actor=actor, action="set", obj=f"user {username}",
                     changes=audit.diff({"webcall_position": position},
                                        {"webcall_position": spec.position}))
    return after


def _carry_webcall_position(conn: Connection, ext_id: int, old: int, new: int) -> list[str]:
    """Multiterminal users whose Web Call position names the Web Call phone that moves from OLD
    to NEW on their login extension now name NEW: the usernames. Else neither `phone set` nor
    `user set` alone could move it (MT009)."""
    named = ((app_user.c.login_extension_id == ext_id)
             & (app_user.c.webcall_mode == "multiterminal")
             & (app_user.c.webcall_position == old))
    usernames = list(conn.execute(select(app_user.c.username).where(named)
                                  .order_by(app_user.c.username)).scalars())
    if usernames:
        conn.execute(update(app_user).where(named).values(webcall_position=new))
    return usernames


def remove_phone(conn: Connection, *, actor: str, number: str, position: int) -> None:
    row = _row(conn, number, position)
    before = public(row)
    conn.execute(delete(phone).where(phone.c.id == row.id))
    enforce(conn, extension_ids=[row.extension_id])
    audit.record(conn, actor=actor, action="remove", obj=f"phone {number}:{position}",
                 changes=audit.diff(before, {}))


def set_password(conn: Connection, *, actor: str, number: str, position: int,
                 password: str, now: datetime | None = None) -> None:
    """Store an admin-chosen password of a non-secure phone, as digests only (MT011)."""
    row = _row(conn, number, position)
    refused = password_violation(phone_spec(row))
    if refused:
        raise RuleViolation([refused])
    key = keys.admin_key(row.sip_auth_user, config.require_realm(conn), password)
    conn.execute(update(phone).where(phone.c.id == row.id)
                 .values(**_key_values(key, now or audit.utcnow())))
    audit.record(conn, actor=actor, action="set-password", obj=f"phone {number}:{position}")

