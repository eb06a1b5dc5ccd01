"""Key listing and rotation: short batched transactions that are safe to run twice at once.

Long because: rotation's safety (two runs at once, a run killed half-way, no device stranded)
rests on pieces that must be read together: the due-period predicates, the locked batch query
and the batched UPDATE and audit statements; the listing sits beside them, reading the same
columns for the state it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    bindparam,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import BindParameter

from mtctl.domain import keys
from mtctl.domain.devices import DEVICE_PROFILES, never_provisioned
from mtctl.errors import MtctlError
from mtctl.store import config
from mtctl.store.audit import as_utc
from mtctl.store.bulk import bind_processor
from mtctl.store.db import Store
from mtctl.store.tables import audit_log, extension, phone, phone_model, template

if TYPE_CHECKING:
    from mtctl.store.rows import AnyRow

BATCH = 1_000
# A time, or a bound parameter for one (a statement compiled once for many batches).
Moment = datetime | BindParameter[datetime]


def _expiring(cutoff: datetime) -> ColumnElement[bool]:
    """Secure phones whose key expires by the cutoff, has expired, or is missing, or that have
    no usable key at all: desk phones that never fetched one (never_provisioned)."""
    return (phone.c.secure.is_(True)) & or_(
        phone.c.key_expires_at.is_(None), phone.c.ha1.is_(None),
        phone.c.key_expires_at <= cutoff,
        phone_model.c.profile.in_(DEVICE_PROFILES) & phone.c.key_delivered_at.is_(None))


def _due(now: Moment, within: timedelta, dialect: str,
         soon: Moment | None = None) -> ColumnElement[bool]:
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
        phone.c.ha1.is_(None), ~_in_grace(now) & _key_due(now, within, dialect, soon))


def rotates_on_fetch() -> ColumnElement[bool]:
    """Desk phones provisioned by MAC: each fetch of their file brings a fresh key, so
    `keys rotate` only marks theirs due (store/devices.py) and never makes one nobody has."""
    from mtctl.domain.devices import DEVICE_PROFILES

    return phone.c.model_id.in_(select(phone_model.c.id)
                                .where(phone_model.c.profile.in_(DEVICE_PROFILES)))


def _in_grace(now: Moment) -> ColumnElement[bool]:
    """The phone has a previous key that is still accepted."""
    return (phone.c.prev_ha1.is_not(None) & phone.c.prev_key_valid_until.is_not(None)
            & (phone.c.prev_key_valid_until > now))


def _key_due(now: Moment, within: timedelta, dialect: str,
             soon: Moment | None = None) -> ColumnElement[bool]:
    """The current key has no expiry, has expired, or is in a due period it was not set in.

    SOON is NOW + WITHIN, given when NOW is a bound parameter."""
    expires, updated = phone.c.key_expires_at, phone.c.key_updated_at
    if dialect == "sqlite":
        # Stored as text: compare both sides in one format, rounded alike to the millisecond.
        fmt = "%Y-%m-%d %H:%M:%f"
        set_before_period = (func.strftime(fmt, updated)
                             < func.strftime(fmt, expires, f"-{int(within.total_seconds())} "
                                             "seconds"))
    else:
        set_before_period = updated < expires - within
    if soon is None:
        soon = cast(datetime, now) + within
    return or_(expires.is_(None),
               (expires <= soon) & or_(expires <= now, updated.is_(None), set_before_period))


def count_waiting(conn: Connection, *, now: datetime, within: timedelta) -> int:
    """Phones whose key is due but that wait for their previous key's grace window to end."""
    return conn.execute(select(func.count()).select_from(phone).where(
        phone.c.secure.is_(True), ~rotates_on_fetch(), phone.c.ha1.is_not(None),
        _in_grace(now), _key_due(now, within, conn.dialect.name))).scalar_one()


def key_state(row: AnyRow, now: datetime, within: timedelta) -> str:
    """What `keys list` says of a phone's key; a desk phone that never fetched one has none
    usable, whatever its row holds (as `check`'s never-provisioned)."""
    if never_provisioned(secure=bool(row.secure), profile=row.profile,
                         key_delivered=row.key_delivered_at is not None):
        return "never-provisioned"
    if row.key_due_at is not None:  # marked by keys rotate: the next fetch brings a new key
        return "due-on-fetch"
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
               phone.c.key_updated_at, phone.c.prev_key_valid_until, phone.c.key_due_at,
               phone_model.c.profile, phone.c.key_delivered_at)
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
            "state": key_state(row, now, within),
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


def _batch_query(now: Moment, within: timedelta, after_id: int | BindParameter[int],
                 size: int | BindParameter[int], dialect: str, lock: bool, *,
                 lean: bool = False, soon: Moment | None = None) -> Select[Any]:
    """The next due phones after AFTER_ID, by id: id, auth user, position, extension number,
    the old expiry as stored, and key lifetime in days; LEAN: id, auth user and lifetime."""
    columns: list[Any] = [phone.c.id, phone.c.sip_auth_user]
    if not lean:  # the expiry as stored: parsing each into a datetime is slow on SQLite
        columns += [phone.c.position, extension.c.number,
                    type_coerce(phone.c.key_expires_at, String).label("expires_raw")]
    query = select(*columns, template.c.key_lifetime_days).join(
        template, template.c.id == phone.c.template_id)
    if not lean:  # a lean read needs nothing of the extension (every phone has one)
        query = query.join(extension, extension.c.id == phone.c.extension_id)
    query = query.where(_due(now, within, dialect, soon), phone.c.id > after_id).order_by(
        phone.c.id).limit(size)
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
    settings: dict[str, Any] = {"realm": realm, "default_lifetime": default_lifetime,
                                "grace": grace, "actor": actor, "failed": report.failed,
                                "collect": collect}
    with ExitStack() as stack:
        fast_path = False
        if not dry_run and store.dialect == "sqlite":
            from mtctl.store import keys_sqlite  # a thread pool of its own: imported where used
            fast_path = keys_sqlite.usable()
        if fast_path:
            moment = phone.c.key_expires_at.type
            fast = stack.enter_context(keys_sqlite.Batches(store, _batch_query(
                bindparam("now", None, type_=moment), within, bindparam("after_id", 0),
                bindparam("size", 0), store.dialect, lock=True, lean=True,
                soon=bindparam("soon", None, type_=moment))))

            def batch(after_id: int, size: int) -> _Batch:
                with store.write() as conn:
                    return fast.rotate(conn, after_id=after_id, size=size, within=within,
                                       now=now(), **settings)
        else:
            def batch(after_id: int, size: int) -> _Batch:
                started = now()
                return _general_batch(store, _batch_query(
                    started, within, after_id, size, store.dialect, lock=not dry_run),
                    dry_run=dry_run, now=started, **settings)
        _run(report, batch, limit=limit, batch_size=batch_size, progress=progress)
    if collect:
        with store.read() as conn:
            report.waiting = count_waiting(conn, now=now(), within=within)
    return report


# A batch's outcome: phones due, the last id read, phones rotated, the rotated ones listed.
_Batch = tuple[int, int, int, list[dict[str, Any]]]


def _run(report: RotationReport, batch: Callable[[int, int], _Batch], *, limit: int | None,
         batch_size: int, progress: Callable[[int], None] | None) -> None:
    """Run BATCH (after this id, at most this many) until no phone is due or LIMIT is met."""
    after_id = done = 0
    while limit is None or done < limit:
        size = batch_size if limit is None else min(batch_size, limit - done)
        try:
            read, after_id, count, rotated = batch(after_id, size)
        except MtctlError as exc:
            # The batch rolled back whole: its phones keep their old keys and stay due.
            report.failed.append({"extension": None, "position": None, "error": str(exc)})
            break
        if not read:
            break
        report.count += count
        report.rotated += rotated
        done += read
        if progress:
            progress(read)


def _general_batch(store: Store, due: Select[Any], *, dry_run: bool, realm: str,
                   now: datetime, default_lifetime: int, grace: timedelta, actor: str,
                   failed: list[dict[str, Any]],
                   collect: bool) -> _Batch:
    """One batch on PostgreSQL (or an old SQLite, or a dry run): how many phones were due,
    the last id read, how many were rotated, and the rotated phones when collecting."""
    with (store.read() if dry_run else store.write()) as conn:
        result = conn.execute(due)
        # The driver's rows as they are (id, auth user, position, number, expiry as stored,
        # lifetime): SQLAlchemy's per-row work is a fifth of a batch's time.
        rows = result.cursor.fetchall()
        result.close()
        if not rows:
            return 0, 0, 0, []
        if dry_run:
            return len(rows), rows[-1][0], len(rows), [_item(row, None) for row in rows]
        count, batch = _rotate_batch(conn, rows, realm=realm, now=now,
                                     default_lifetime=default_lifetime, grace=grace,
                                     actor=actor, failed=failed, collect=collect)
        return len(rows), rows[-1][0], count, batch


def _item(row: Sequence[Any], expires: datetime | None) -> dict[str, Any]:
    _, _, position, number, *_ = row
    return {"extension": number, "position": position,
            "key_expires_at": expires.isoformat(timespec="seconds") if expires else None}


def _rotate_batch(conn: Connection, rows: Sequence[Sequence[Any]], *, realm: str, now: datetime,
                  default_lifetime: int, grace: timedelta, actor: str,
                  failed: list[dict[str, Any]],
                  collect: bool) -> tuple[int, list[dict[str, Any]]]:
    """Rotate one batch: one prepared UPDATE per phone and one audit INSERT per phone, each
    statement sent once for the whole batch (executemany)."""
    keyed: list[tuple[Any, ...]] = []
    audits: list[tuple[Any, ...]] = []
    items: list[dict[str, Any]] = []
    at = bind_processor(audit_log.c.at, conn)(now)
    as_time = bind_processor(phone.c.key_expires_at, conn)
    updated = as_time(now)
    grace_until = as_time(now + grace) if grace else None
    expiry: dict[int, tuple[Any, str]] = {}
    passwords = keys.new_passwords(len(rows))
    for (pid, auth_user, position, number, expires_raw, lifetime_days), password in zip(
            rows, passwords, strict=True):
        lifetime = lifetime_days or default_lifetime
        if lifetime not in expiry:
            error = keys.lifetime_error(lifetime)
            if error:
                failed.append({"extension": number, "position": position, "error": error})
                continue
            expires = now + timedelta(days=lifetime)
            expiry[lifetime] = (as_time(expires), expires.isoformat(timespec="seconds"))
        expires_value, expires_text = expiry[lifetime]
        try:
            ha1, ha1_sha256 = keys.digests(auth_user, realm, password)
        except Exception as exc:  # one bad phone must not stop the night's rotation
            failed.append({"extension": number, "position": position,
                           "error": type(exc).__name__})
            continue
        keyed.append((ha1, ha1_sha256, expires_value, pid))
        old = f'"{_iso_seconds(expires_raw)}"' if expires_raw else "null"
        # ISO timestamps need no escaping, so this is exact JSON.
        audits.append((f"phone {number}:{position}",
                       f'{{"key_expires_at": [{old}, "{expires_text}"]}}'))
        if collect:
            items.append({"extension": number, "position": position,
                          "key_expires_at": expires_text})
    if keyed:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            sql = _statements(conn.dialect.name)
            if grace:
                cursor.executemany(sql.set_key, [(grace_until, updated, *k) for k in keyed])
            else:
                cursor.executemany(sql.set_key_only, [(updated, *k) for k in keyed])
            cursor.executemany(sql.audit, [(at, actor, *a) for a in audits])
        finally:
            cursor.close()
    return len(keyed), items


SET_KEY = (
    "UPDATE phone SET "
    "prev_ha1 = CASE WHEN ha1 IS NULL THEN prev_ha1 ELSE ha1 END, "
    "prev_ha1_sha256 = CASE WHEN ha1 IS NULL THEN prev_ha1_sha256 ELSE ha1_sha256 END, "
    "prev_key_valid_until = CASE WHEN ha1 IS NULL THEN prev_key_valid_until ELSE {p} END, "
    "key_updated_at = {p}, ha1 = {p}, ha1_sha256 = {p}, key_expires_at = {p} WHERE id = {p}"
)
SET_KEY_ONLY = (
    "UPDATE phone SET prev_ha1 = NULL, prev_ha1_sha256 = NULL, prev_key_valid_until = NULL, "
    "key_updated_at = {p}, ha1 = {p}, ha1_sha256 = {p}, key_expires_at = {p} WHERE id = {p}"
)
AUDIT_ROTATION = ("INSERT INTO audit_log (at, actor, action, object, changes) "
                  "VALUES ({p}, {p}, 'rotate-key', {p}, {changes})")


@dataclass(frozen=True)
class _Sql:
    set_key: str
    set_key_only: str
    audit: str


@cache
def _statements(dialect: str) -> _Sql:
    """Rotation's statements in the driver's parameter style, made once per process.

    Every SET expression reads the row as it was, so the old key becomes the previous one,
    valid for the grace period (a phone without a key keeps the previous key it had: only
    rotation by a key makes one)."""
    mark = "?" if dialect == "sqlite" else "%s"
    # PostgreSQL will not turn a text parameter into json by itself.
    changes = "CAST({p} AS JSON)" if dialect == "postgresql" else "{p}"
    set_key, set_key_only, audit = (
        text.format(p=mark) for text in (SET_KEY, SET_KEY_ONLY,
                                         AUDIT_ROTATION.replace("{changes}", changes)))
    return _Sql(set_key, set_key_only, audit)


def forget_expired_previous_keys(store: Store, *, now: datetime) -> int:
    """Drop previous keys whose grace period is over (they are refused already)."""
    with store.write() as conn:
        return conn.execute(
            update(phone).where(phone.c.prev_key_valid_until <= now).values(
                prev_ha1=None, prev_ha1_sha256=None, prev_key_valid_until=None)).rowcount


def _iso_seconds(value: str | datetime) -> str:
    """An expiry as stored (SQLite: `2026-11-26 03:13:00.123456`) in ISO form, to the second."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat(timespec="seconds")
    return f"{value[:10]}T{value[11:19]}+00:00"

