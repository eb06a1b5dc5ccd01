"""Key listing and rotation: short batched transactions that are safe to run twice at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from mtctl.domain import keys
from mtctl.errors import MtctlError
from mtctl.store import config
from mtctl.store.audit import as_utc
from mtctl.store.db import Store
from mtctl.store.tables import audit_log, extension, phone, phone_model, template

BATCH = 1_000


def _due(cutoff: datetime):  # type: ignore[no-untyped-def]
    """Secure phones whose key expires by the cutoff, has expired, or is missing."""
    return (phone.c.secure.is_(True)) & or_(phone.c.key_expires_at.is_(None),
                                           phone.c.ha1.is_(None),
                                           phone.c.key_expires_at <= cutoff)


def key_state(row, now: datetime, within: timedelta) -> str:  # type: ignore[no-untyped-def]
    expires = as_utc(row.key_expires_at)
    if row.ha1 is None:
        return "missing"
    if expires is None:
        return "no-expiry"
    if expires <= now:
        return "expired"
    if expires <= now + within:
        return "expiring"
    return "ok"


def list_keys(conn: Connection, *, now: datetime, within: timedelta,
              expiring_within: timedelta | None = None) -> list[dict[str, Any]]:
    """Phones that have or need a key, soonest expiry first; never a digest."""
    query = (
        select(extension.c.number, phone.c.position, phone_model.c.name.label("model"),
               phone.c.secure, phone.c.sip_auth_user, phone.c.ha1, phone.c.key_expires_at,
               phone.c.key_updated_at)
        .join(extension, extension.c.id == phone.c.extension_id)
        .join(phone_model, phone_model.c.id == phone.c.model_id)
        .where(or_(phone.c.secure.is_(True), phone.c.ha1.is_not(None)))
        .order_by(phone.c.key_expires_at.is_(None), phone.c.key_expires_at, extension.c.number,
                  phone.c.position)
    )
    if expiring_within is not None:
        query = query.where(_due(now + expiring_within))
    items = []
    for row in conn.execute(query):
        expires, updated = as_utc(row.key_expires_at), as_utc(row.key_updated_at)
        items.append({
            "extension": row.number, "position": row.position, "model": row.model,
            "secure": bool(row.secure), "sip_auth_user": row.sip_auth_user,
            "key_expires_at": expires.isoformat(timespec="seconds") if expires else None,
            "key_updated_at": updated.isoformat(timespec="seconds") if updated else None,
            "state": key_state(row, now, within),
        })
    return items


@dataclass
class RotationReport:
    rotated: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "rotated": self.rotated, "failed": self.failed}


def _batch_query(cutoff: datetime, after_id: int, size: int, dialect: str):  # type: ignore[no-untyped-def]
    query = (
        select(phone.c.id, phone.c.sip_auth_user, phone.c.position, extension.c.number,
               phone.c.key_expires_at, template.c.key_lifetime_days)
        .join(extension, extension.c.id == phone.c.extension_id)
        .join(template, template.c.id == phone.c.template_id)
        .where(_due(cutoff), phone.c.id > after_id)
        .order_by(phone.c.id)
        .limit(size)
    )
    if dialect == "postgresql":
        # Two overlapping runs split the work: each locks its batch, the other skips it.
        query = query.with_for_update(of=phone, skip_locked=True)
    return query


def rotate_due_keys(store: Store, *, actor: str, now: Callable[[], datetime],
                    within: timedelta, limit: int | None = None, dry_run: bool = False,
                    batch_size: int = BATCH,
                    progress: Callable[[int], None] | None = None) -> RotationReport:
    """Give every due secure phone a new key, one committed batch at a time.

    Each batch re-reads which phones are due inside its own write transaction, so a phone
    rotated by a concurrent run is no longer due and is never rotated twice; a run killed
    half-way leaves whole batches done and the rest due for the next run.
    """
    report = RotationReport(dry_run=dry_run)
    with store.read() as conn:
        realm = config.require_realm(conn)
        default_lifetime = config.int_value(conn, "keys.lifetime_days")
    after_id = 0
    done = 0
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        started = now()
        cutoff = started + within
        try:
            with (store.read() if dry_run else store.write()) as conn:
                locking = "none" if dry_run else store.dialect
                rows = conn.execute(_batch_query(cutoff, after_id, size, locking)).all()
                if not rows:
                    break
                after_id = rows[-1].id
                if dry_run:
                    batch = [_item(row, None) for row in rows]
                else:
                    batch = _rotate_batch(conn, rows, realm=realm, now=started,
                                          default_lifetime=default_lifetime, actor=actor,
                                          failed=report.failed)
        except MtctlError as exc:
            # The batch rolled back whole: its phones keep their old keys and stay due.
            report.failed.append({"extension": None, "position": None, "error": str(exc)})
            break
        report.rotated += batch
        done += len(rows)
        if progress:
            progress(len(rows))
    return report


def _item(row, expires: datetime | None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"extension": row.number, "position": row.position,
            "key_expires_at": expires.isoformat(timespec="seconds") if expires else None}


def _rotate_batch(conn: Connection, rows: list, *, realm: str, now: datetime,
                  default_lifetime: int, actor: str,
                  failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    updates, audits, done = [], [], []
    for row in rows:
        lifetime = row.key_lifetime_days or default_lifetime
        try:
            key = keys.system_key(row.sip_auth_user, realm, now=now, lifetime_days=lifetime)
        except Exception as exc:  # one bad phone must not stop the night's rotation
            failed.append({"extension": row.number, "position": row.position,
                           "error": type(exc).__name__})
            continue
        before = as_utc(row.key_expires_at)
        updates.append({"b_id": row.id, "b_ha1": key.ha1, "b_sha256": key.ha1_sha256,
                        "b_expires": key.expires_at, "b_updated": now})
        audits.append({"at": now, "actor": actor, "action": "rotate-key",
                       "object": f"phone {row.number}:{row.position}",
                       "changes": {"key_expires_at": [
                           before.isoformat(timespec="seconds") if before else None,
                           key.expires_at.isoformat(timespec="seconds")]}})
        done.append(_item(row, key.expires_at))
    if updates:
        conn.execute(
            update(phone).where(phone.c.id == bindparam("b_id")).values(
                ha1=bindparam("b_ha1"), ha1_sha256=bindparam("b_sha256"),
                key_expires_at=bindparam("b_expires"), key_updated_at=bindparam("b_updated")),
            updates)
        conn.execute(insert(audit_log), audits)
    return done


def count_due(conn: Connection, *, cutoff: datetime) -> int:
    return conn.execute(select(func.count()).select_from(phone).where(_due(cutoff))).scalar_one()

