"""Key rotation's batch on SQLite: a few set-wise statements, whatever the batch's size.

At 100,000 phones the per-row work of the general path (a row fetched into Python, two
statement executions per phone, each with its own bound values) costs more than the writes
themselves. Here the due phones come back as one row of JSON arrays; the new digests go in
as two byte strings (32 and 64 hex characters a phone, in the batch's order), which the
UPDATE cuts up by each phone's place in the batch; and the audit rows are made by SQL from
the rows as they are before the UPDATE, in the same format as the general path writes.

Needs SQLite 3.33 (UPDATE ... FROM) with its JSON functions; `usable` says whether this one
has them, else rotation takes the general path.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection

from mtctl.domain import keys
from mtctl.domain.config_keys import MAX_LIFETIME_DAYS
from mtctl.store.bulk import bind_processor
from mtctl.store.tables import audit_log, phone


@cache
def usable() -> bool:
    """This SQLite library has UPDATE ... FROM and the JSON functions the batch uses."""
    if sqlite3.sqlite_version_info < (3, 33):
        return False
    try:
        with sqlite3.connect(":memory:") as probe:
            probe.execute("SELECT json_group_array(value) FROM json_each('[1]')").fetchone()
    except sqlite3.Error:
        return False
    return True


def lifetime_error(lifetime: int) -> str | None:
    """Why a phone's key lifetime (days) cannot be used: its template was stored before
    lifetimes had a range."""
    if 1 <= lifetime <= MAX_LIFETIME_DAYS:
        return None
    return f"its template's key lifetime ({lifetime} days) is out of range; see: mtctl check"


# Each SET expression reads the row as it was, so the old key becomes the previous one, valid
# for the grace period (a phone without a key keeps the previous key it had).
_SET_PREVIOUS = (
    "prev_ha1 = CASE WHEN ha1 IS NULL THEN prev_ha1 ELSE ha1 END, "
    "prev_ha1_sha256 = CASE WHEN ha1 IS NULL THEN prev_ha1_sha256 ELSE ha1_sha256 END, "
    "prev_key_valid_until = CASE WHEN ha1 IS NULL THEN prev_key_valid_until "
    "ELSE :grace_until END, ")
_SET_NO_PREVIOUS = "prev_ha1 = NULL, prev_ha1_sha256 = NULL, prev_key_valid_until = NULL, "
# n.key is the phone's place in the batch (its index in :ids).
_SET_KEY = (
    "UPDATE phone SET {previous}key_updated_at = :updated, "
    "ha1 = CAST(substr(:ha1, n.key * 32 + 1, 32) AS TEXT), "
    "ha1_sha256 = CAST(substr(:ha1_sha256, n.key * 64 + 1, 64) AS TEXT), "
    "key_expires_at = :expires FROM json_each(:ids) AS n WHERE phone.id = n.value")
SET_KEY = _SET_KEY.format(previous=_SET_PREVIOUS)
SET_KEY_ONLY = _SET_KEY.format(previous=_SET_NO_PREVIOUS)
# {"key_expires_at": [OLD, NEW]} with OLD as stored (`2026-11-26 03:13:00.123456`) in ISO
# form to the second, or null: what the general path writes. ISO timestamps need no escaping.
AUDIT_ROTATION = (
    "INSERT INTO audit_log (at, actor, action, object, changes) "
    "SELECT :at, :actor, 'rotate-key', 'phone ' || e.number || ':' || p.position, "
    "'{\"key_expires_at\": [' || CASE WHEN p.key_expires_at IS NULL THEN 'null' "
    "ELSE '\"' || substr(p.key_expires_at, 1, 10) || 'T' || substr(p.key_expires_at, 12, 8) "
    "|| '+00:00\"' END || ', \"' || :expires_text || '\"]}' "
    "FROM json_each(:ids) AS n JOIN phone AS p ON p.id = n.value "
    "JOIN extension AS e ON e.id = p.extension_id ORDER BY n.key")


class DueRead:
    """A batch's due phones as one row: how many, the last id, and a JSON array of each column.

    Made from the due query with bound parameters now, soon (now + within), after_id and size,
    and compiled once: building and compiling it for every batch took longer than running it.
    """

    def __init__(self, due: Select[Any]) -> None:
        batch = due.subquery()
        self.query = select(func.count(), func.coalesce(func.max(batch.c.id), 0),
                            *(func.json_group_array(column) for column in batch.c))
        self.compiled: tuple[str, list[str], dict[str, Any]] | None = None

    def __call__(self, cursor: Any, conn: Connection, *, now: datetime, within: timedelta,
                 after_id: int, size: int) -> tuple[Any, ...]:
        if self.compiled is None:
            compiled = self.query.compile(dialect=conn.dialect,
                                          compile_kwargs={"render_postcompile": True})
            self.compiled = (str(compiled), list(compiled.positiontup or ()),
                             dict(compiled.construct_params()))
        sql, order, values = self.compiled
        as_time = bind_processor(phone.c.key_expires_at, conn)
        values = values | {"now": as_time(now), "soon": as_time(now + within),
                           "after_id": after_id, "size": size}
        row: tuple[Any, ...] = cursor.execute(sql, [values[name] for name in order]).fetchone()
        return row


def rotate_batch(conn: Connection, due: DueRead, *, after_id: int, size: int,
                 within: timedelta, realm: str, now: datetime, default_lifetime: int,
                 grace: timedelta, actor: str, failed: list[dict[str, Any]], collect: bool,
                 ) -> tuple[int, int, int, list[dict[str, Any]]]:
    """Rotate the next SIZE phones due at NOW after AFTER_ID, read inside this write
    transaction.

    Returns how many were due, the last id read (0 if none), how many were rotated, and (when
    collecting) the rotated phones.
    """
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        return _rotate(conn, cursor, due(cursor, conn, now=now, within=within,
                                         after_id=after_id, size=size),
                       realm=realm, now=now, default_lifetime=default_lifetime, grace=grace,
                       actor=actor, failed=failed, collect=collect)
    finally:
        cursor.close()


def _rotate(conn: Connection, cursor: Any, read: tuple[Any, ...], *, realm: str,
            now: datetime, default_lifetime: int, grace: timedelta, actor: str,
            failed: list[dict[str, Any]], collect: bool,
            ) -> tuple[int, int, int, list[dict[str, Any]]]:
    count, last_id, *arrays = read
    if not count:
        return 0, 0, 0, []
    ids, users, positions, numbers, lifetimes = (json.loads(text) for text in arrays)
    passwords = keys.new_passwords(count)
    # Phones by key lifetime: each lifetime is one expiry, so one pair of statements.
    groups: dict[int, list[int]] = {}
    if len(set(lifetimes)) == 1:
        groups[lifetimes[0] or default_lifetime] = list(range(count))
    else:
        for place, days in enumerate(lifetimes):
            groups.setdefault(days or default_lifetime, []).append(place)
    as_time = bind_processor(phone.c.key_expires_at, conn)
    common = {"at": bind_processor(audit_log.c.at, conn)(now), "actor": actor,
              "updated": as_time(now), "grace_until": as_time(now + grace) if grace else None}
    rotated: list[int] = []
    expiry_texts: dict[int, str] = {}
    for lifetime, places in groups.items():
        error = lifetime_error(lifetime)
        if error:
            failed += [{"extension": numbers[i], "position": positions[i], "error": error}
                       for i in places]
            continue
        places, ha1, ha1_sha256 = _digests(places, users, realm, passwords, numbers,
                                           positions, failed)
        if not places:
            continue
        expires = now + timedelta(days=lifetime)
        expiry_texts[lifetime] = expires.isoformat(timespec="seconds")
        values = common | {"ids": json.dumps([ids[i] for i in places]),
                           "expires": as_time(expires),
                           "expires_text": expiry_texts[lifetime],
                           "ha1": ha1, "ha1_sha256": ha1_sha256}
        cursor.execute(AUDIT_ROTATION, values)  # each takes the values it names
        cursor.execute(SET_KEY if grace else SET_KEY_ONLY, values)
        rotated += places
    items: list[dict[str, Any]] = []
    if collect:
        items = [{"extension": numbers[i], "position": positions[i],
                  "key_expires_at": expiry_texts[lifetimes[i] or default_lifetime]}
                 for i in sorted(rotated)]
    return count, last_id, len(rotated), items


def _digests(places: list[int], users: Sequence[str], realm: str, passwords: Sequence[str],
             numbers: Sequence[str], positions: Sequence[int],
             failed: list[dict[str, Any]]) -> tuple[list[int], bytes, bytes]:
    """The phones whose key can be digested, and their digests (`keys.digest_columns`); one
    bad phone must not stop the night's rotation: the others go on, it is reported."""
    with suppress(Exception):  # else find which phones fail, below
        return places, *keys.digest_columns([users[i] for i in places], realm,
                                             [passwords[i] for i in places])
    good = []
    for i in places:
        try:
            keys.digests(users[i], realm, passwords[i])
        except Exception as exc:  # noqa: BLE001
            failed.append({"extension": numbers[i], "position": positions[i],
                           "error": type(exc).__name__})
        else:
            good.append(i)
    if not good:
        return good, b"", b""
    return good, *keys.digest_columns([users[i] for i in good], realm,
                                      [passwords[i] for i in good])
