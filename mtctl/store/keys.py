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
    case,
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
from mtctl.domain.config_keys import MAX_LIFETIME_DAYS
from mtctl.errors import MtctlError
from mtctl.store import config
from mtctl.store.audit import as_utc
from mtctl.store.db import Store, executemany_fast
from mtctl.store.tables import audit_log, extension, phone, phone_model, template

BATCH = 1_000


def _expiring(cutoff: datetime):  # type: ignore[no-untyped-def]
    """Secure phones whose key expires by the cutoff, has expired, or is missing."""
    return (phone.c.secure.is_(True)) & or_(phone.c.key_expires_at.is_(None),
                                           phone.c.ha1.is_(None),
                                           phone.c.key_expires_at <= cutoff)


def _due(now: datetime, within: timedelta, dialect: str):  # type: ignore[no-untyped-def]
    """Secure phones `keys rotate` replaces the key of at NOW, read from the row as it is.

    The rule that never strands a device (README, Keys). A device holds the key it last fetched
    (provisioning serves the current key); mtctl does not record fetches, so a previous key still
    inside its grace window may be the one the device holds, and the current key may be too.
    Rotating would keep only one of them, so such a phone waits until the grace window ends
    (the proxy does not check expiry: its current key keeps working meanwhile). A missing key
    is always due; the new one leaves the previous key as it is.

    A due period opens `within` before the key's expiry. A key set inside its own due period
    (always so when the window is at least the lifetime) is not due again until it expires,
    so every run, overlapping or not, rotates a phone at most once per due period.
    """
    return phone.c.secure.is_(True) & ~rotates_on_fetch() & or_(
        phone.c.ha1.is_(None), ~_in_grace(now) & _key_due(now, within, dialect))


def rotates_on_fetch():  # type: ignore[no-untyped-def]
    """Desk phones provisioned by MAC: each fetch of their file brings a fresh key, so
    `keys rotate` only marks theirs due (store/devices.py) and never makes one nobody has."""
    from mtctl.domain.devices import DEVICE_PROFILES

    return phone.c.model_id.in_(select(phone_model.c.id)
                                .where(phone_model.c.profile.in_(DEVICE_PROFILES)))


def _in_grace(now: datetime):  # type: ignore[no-untyped-def]
    """The phone has a previous key that is still accepted."""
    return (phone.c.prev_ha1.is_not(None) & phone.c.prev_key_valid_until.is_not(None)
            & (phone.c.prev_key_valid_until > now))


def _key_due(now: datetime, within: timedelta, dialect: str):  # type: ignore[no-untyped-def]
    """The current key has no expiry, has expired, or is in a due period it was not set in."""
    expires, updated = phone.c.key_expires_at, phone.c.key_updated_at
    if dialect == "sqlite":
        # Stored as text: compare both sides in one format, rounded alike to the millisecond.
        fmt = "%Y-%m-%d %H:%M:%f"
        set_before_period = (func.strftime(fmt, updated)
                             < func.strftime(fmt, expires, f"-{int(within.total_seconds())} "
                                             "seconds"))
    else:
        set_before_period = updated < expires - within
    return or_(expires.is_(None),
               (expires <= now + within) & or_(expires <= now, updated.is_(None),
                                               set_before_period))


def count_waiting(conn: Connection, *, now: datetime, within: timedelta) -> int:
    """Phones whose key is due but that wait for their previous key's grace window to end."""
    return conn.execute(select(func.count()).select_from(phone).where(
        phone.c.secure.is_(True), ~rotates_on_fetch(), phone.c.ha1.is_not(None),
        _in_grace(now), _key_due(now, within, conn.dialect.name))).scalar_one()


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
               phone.c.key_updated_at, phone.c.prev_key_valid_until, phone.c.key_due_at)
        .join(extension, extension.c.id == phone.c.extension_id)
        .join(phone_model, phone_model.c.id == phone.c.model_id)
        .where(or_(phone.c.secure.is_(True), phone.c.ha1.is_not(None)))
        .order_by(phone.c.key_expires_at.is_(None), phone.c.key_expires_at, extension.c.number,
                  phone.c.position)
    )
    if expiring_within is not None:
        query = query.where(_expiring(now + expiring_within))
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
            # Marked due by keys rotate: the desk phone's next fetch brings its new key.
            "state": "due-on-fetch" if row.key_due_at is not None
            else key_state(row, now, within),
        })
    return items


@dataclass
class RotationReport:
    count: int = 0
    rotated: list[dict[str, Any]] = field(default_factory=list)  # only when collected
    failed: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    waiting: int = 0  # due, held back by a previous key in its grace window (when collected)

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "count": self.count, "rotated": self.rotated,
                "failed": self.failed}


def _batch_query(now: datetime, within: timedelta, after_id: int, size: int, dialect: str,
                 lock: bool):  # type: ignore[no-untyped-def]
    query = (
        select(phone.c.id, phone.c.sip_auth_user, phone.c.position, extension.c.number,
               # As stored: parsing every old expiry into a datetime is slow on SQLite.
               type_coerce(phone.c.key_expires_at, String).label("expires_raw"),
               template.c.key_lifetime_days)
        .join(extension, extension.c.id == phone.c.extension_id)
        .join(template, template.c.id == phone.c.template_id)
        .where(_due(now, within, dialect), phone.c.id > after_id)
        .order_by(phone.c.id)
        .limit(size)
    )
    if lock and dialect == "postgresql":
        # Two overlapping runs split the work: each locks its batch, the other skips it.
        query = query.with_for_update(of=phone, skip_locked=True)
    return query


def rotate_due_keys(store: Store, *, actor: str, now: Callable[[], datetime],
                    within: timedelta, limit: int | None = None, dry_run: bool = False,
                    batch_size: int = BATCH, collect: bool = True,
                    progress: Callable[[int], None] | None = None) -> RotationReport:
    """Give every due secure phone a new key, one committed batch at a time.

    Each batch decides which phones are due from the rows it has locked, inside its own write
    transaction (see `_due`), so a phone rotated by any run in its due period is not due again
    and is never rotated twice; a run killed half-way leaves whole batches done and the rest
    due for the next run. A previous key inside its grace window is never replaced.
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
        try:
            with (store.read() if dry_run else store.write()) as conn:
                rows = conn.execute(_batch_query(started, within, after_id, size, store.dialect,
                                                 lock=not dry_run)).all()
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
    if collect:
        with store.read() as conn:
            report.waiting = count_waiting(conn, now=now(), within=within)
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
        if not 1 <= lifetime <= MAX_LIFETIME_DAYS:  # a template stored before ranges existed
            failed.append({"extension": number, "position": position, "error": (
                f"its template's key lifetime ({lifetime} days) is out of range; see: mtctl "
                "check")})
            continue
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
        # Times first: their CASE reads the old key, which the digests replace next.
        for lifetime, ids in by_lifetime.items():
            shared: dict[str, Any] = {"key_expires_at": expiry[lifetime][0],
                                      "key_updated_at": now}
            if grace:
                shared["prev_key_valid_until"] = _unless_no_key(now + grace)
            else:
                shared |= {"prev_ha1": None, "prev_ha1_sha256": None,
                           "prev_key_valid_until": None}
            conn.execute(update(phone).where(phone.c.id.in_(ids)).values(**shared))
        executemany_fast(conn, SET_DIGESTS if grace else SET_DIGESTS_ONLY, digests)
        executemany_fast(conn, _insert_audit(conn.dialect.name), audits)
    return len(digests), items


def _unless_no_key(value):  # type: ignore[no-untyped-def]
    """VALUE, or the previous key's validity as it is when the phone has no key to retire."""
    return case((phone.c.ha1.is_(None), phone.c.prev_key_valid_until), else_=value)


# SET expressions read the row as it was, so the old key becomes the previous one (a phone
# without a key keeps the previous key it had: only rotation by a key makes one).
SET_DIGESTS = update(phone).where(phone.c.id == bindparam("b_id")).values(
    prev_ha1=case((phone.c.ha1.is_(None), phone.c.prev_ha1), else_=phone.c.ha1),
    prev_ha1_sha256=case((phone.c.ha1.is_(None), phone.c.prev_ha1_sha256),
                         else_=phone.c.ha1_sha256),
    ha1=bindparam("b_ha1"), ha1_sha256=bindparam("b_sha256"))
SET_DIGESTS_ONLY = update(phone).where(phone.c.id == bindparam("b_id")).values(
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
