"""Key listing and rotation: short batched transactions that are safe to run twice at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    String,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection

from mtctl.domain import keys
from mtctl.errors import MtctlError
from mtctl.store import config
from mtctl.store.audit import as_utc
from mtctl.store.db import Store, executemany_fast
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
               phone.c.key_updated_at, phone.c.prev_key_valid_until)
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
        previous = as_utc(row.prev_key_valid_until)
        items.append({
            "extension": row.number, "position": row.position, "model": row.model,
            "secure": bool(row.secure), "sip_auth_user": row.sip_auth_user,
            "key_expires_at": expires.isoformat(timespec="seconds") if expires else None,
            "key_updated_at": updated.isoformat(timespec="seconds") if updated else None,
            "previous_key_valid_until": (previous.isoformat(timespec="seconds")
                                         if previous and previous > now else None),
            "state": key_state(row, now, within),
        })
    return items


@dataclass
class RotationReport:
    count: int = 0
    rotated: list[dict[str, Any]] = field(default_factory=list)  # only when collected
    failed: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "count": self.count, "rotated": self.rotated,
                "failed": self.failed}


def _batch_query(cutoff: datetime, after_id: int, size: int, dialect: str):  # type: ignore[no-untyped-def]
    query = (
        select(phone.c.id, phone.c.sip_auth_user, phone.c.position, extension.c.number,
               # As stored: parsing every old expiry into a datetime is slow on SQLite.
               type_coerce(phone.c.key_expires_at, String).label("expires_raw"),
               template.c.key_lifetime_days)
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
                    batch_size: int = BATCH, collect: bool = True,
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
        grace = timedelta(days=config.int_value(conn, "keys.grace_days"))
    if not dry_run:
        forget_expired_previous_keys(store, now=now())
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
                    count, batch = len(rows), [_item(row, None) for row in rows]
                else:
                    count, batch = _rotate_batch(conn, rows, realm=realm, now=started,
                                                 default_lifetime=default_lifetime, grace=grace,
                                                 actor=actor, failed=report.failed,
                                                 collect=collect)
        except MtctlError as exc:
            # The batch rolled back whole: its phones keep their old keys and stay due.
            report.failed.append({"extension": None, "position": None, "error": str(exc)})
            break
        report.count += count
        report.rotated += batch
        done += len(rows)
        if progress:
            progress(len(rows))
    return report


def _item(row, expires: datetime | None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"extension": row.number, "position": row.position,
            "key_expires_at": expires.isoformat(timespec="seconds") if expires else None}


def _rotate_batch(conn: Connection, rows: list, *, realm: str, now: datetime,
                  default_lifetime: int, grace: timedelta, actor: str,
                  failed: list[dict[str, Any]],
                  collect: bool) -> tuple[int, list[dict[str, Any]]]:
    """Rotate one batch: per-row digests in one executemany, shared times in one UPDATE each."""
    digests: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    at = _bind(audit_log.c.at, conn)(now)
    by_lifetime: dict[int, list[int]] = {}
    expiry: dict[int, tuple[datetime, str]] = {}
    passwords = iter(keys.new_passwords(len(rows)))
    for pid, auth_user, position, number, expires_raw, lifetime_days in rows:
        lifetime = lifetime_days or default_lifetime
        if lifetime not in expiry:
            expires = now + timedelta(days=lifetime)
            expiry[lifetime] = (expires, expires.isoformat(timespec="seconds"))
        expires, expires_text = expiry[lifetime]
        try:
            ha1, ha1_sha256 = keys.digests(auth_user, realm, next(passwords))
        except Exception as exc:  # one bad phone must not stop the night's rotation
            failed.append({"extension": number, "position": position,
                           "error": type(exc).__name__})
            continue
        digests.append({"b_id": pid, "b_ha1": ha1, "b_sha256": ha1_sha256})
        by_lifetime.setdefault(lifetime, []).append(pid)
        old = f'"{_iso_seconds(expires_raw)}"' if expires_raw else "null"
        audits.append({"b_at": at, "b_actor": actor, "b_action": "rotate-key",
                       "b_object": f"phone {number}:{position}",
                       # ISO timestamps need no escaping, so this is exact JSON.
                       "b_changes": f'{{"key_expires_at": [{old}, "{expires_text}"]}}'})
        if collect:
            items.append({"extension": number, "position": position,
                          "key_expires_at": expires_text})
    if digests:
        executemany_fast(conn, SET_DIGESTS, digests)
        for lifetime, ids in by_lifetime.items():
            shared: dict[str, Any] = {"key_expires_at": expiry[lifetime][0],
                                      "key_updated_at": now}
            if grace:
                shared["prev_key_valid_until"] = now + grace
            else:
                shared |= {"prev_ha1": None, "prev_ha1_sha256": None,
                           "prev_key_valid_until": None}
            conn.execute(update(phone).where(phone.c.id.in_(ids)).values(**shared))
        executemany_fast(conn, _insert_audit(conn.dialect.name), audits)
    return len(digests), items


# SET expressions read the row as it was, so the old key becomes the previous one.
SET_DIGESTS = update(phone).where(phone.c.id == bindparam("b_id")).values(
    prev_ha1=phone.c.ha1, prev_ha1_sha256=phone.c.ha1_sha256,
    ha1=bindparam("b_ha1"), ha1_sha256=bindparam("b_sha256"))


def forget_expired_previous_keys(store: Store, *, now: datetime) -> int:
    """Drop previous keys whose grace period is over (they are refused already)."""
    with store.write() as conn:
        return conn.execute(
            update(phone).where(phone.c.prev_key_valid_until <= now).values(
                prev_ha1=None, prev_ha1_sha256=None, prev_key_valid_until=None)).rowcount


def _insert_audit(dialect: str):  # type: ignore[no-untyped-def]
    """Audit rows with their changes already serialised to JSON text."""
    changes = bindparam("b_changes", type_=String)
    return insert(audit_log).values(
        at=bindparam("b_at"), actor=bindparam("b_actor"), action=bindparam("b_action"),
        object=bindparam("b_object"),
        # PostgreSQL will not turn a text parameter into json by itself.
        changes=cast(changes, JSON) if dialect == "postgresql" else changes)


def _iso_seconds(value: str | datetime) -> str:
    """An expiry as stored (SQLite: `2026-11-26 03:13:00.123456`) in ISO form, to the second."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat(timespec="seconds")  # type: ignore[union-attr]
    return f"{value[:10]}T{value[11:19]}+00:00"


def _bind(column, conn: Connection):  # type: ignore[no-untyped-def]
    """The driver value of a column's Python value, as SQLAlchemy would bind it."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process or (lambda value: value)


def count_due(conn: Connection, *, cutoff: datetime) -> int:
    return conn.execute(select(func.count()).select_from(phone).where(_due(cutoff))).scalar_one()

