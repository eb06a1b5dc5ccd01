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
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, suppress
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection

from mtctl.domain import keys
from mtctl.store.bulk import bind_processor
from mtctl.store.db import Store, _translated
from mtctl.store.tables import audit_log, phone

CHECKPOINT_PAGES = 10_000  # about 40 MB of WAL at SQLite's usual 4 KiB pages


@cache
def usable() -> bool:
    """This SQLite library has UPDATE ... FROM and the JSON functions the batch uses."""
    if sqlite3.sqlite_version_info < (3, 33):
        return False
    try:
        with closing(sqlite3.connect(":memory:")) as probe:
            probe.execute("SELECT json_group_array(value) FROM json_each('[1]')").fetchone()
    except sqlite3.Error:
        return False
    return True


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
# In the batch's order, which is by id (the due read's): the phones are looked up by an `IN`
# list, which SQLite walks in id order, so no sort is needed (joined from json_each instead,
# the rows came in the list's order but SQLite sorted them again, a fifth of the statement).
AUDIT_ROTATION = (
    "INSERT INTO audit_log (at, actor, action, object, changes) "
    "SELECT :at, :actor, 'rotate-key', 'phone ' || e.number || ':' || p.position, "
    "'{\"key_expires_at\": [' || CASE WHEN p.key_expires_at IS NULL THEN 'null' "
    "ELSE '\"' || substr(p.key_expires_at, 1, 10) || 'T' || substr(p.key_expires_at, 12, 8) "
    "|| '+00:00\"' END || ', \"' || :expires_text || '\"]}' "
    "FROM phone AS p JOIN extension AS e ON e.id = p.extension_id "
    "WHERE p.id IN (SELECT value FROM json_each(:ids)) ORDER BY p.id")


class Batches:
    """One run's batches: the due read, compiled once, and a thread that digests keys.

    The due read is made from the due query (columns id, auth user, lifetime in days) with
    bound parameters now, soon (now + within), after_id and size: building and compiling it
    for every batch took longer than running it. It returns one row: how many phones are due,
    the last id, the ids and auth users as JSON arrays, and the lifetimes (the array, and the
    least and greatest, so one lifetime needs no array read).

    Digesting a batch's keys takes about as long as SQLite takes to write its audit rows, and
    sqlite3 lets go of the GIL while a statement runs: the thread digests while the audit
    INSERT runs, on a second core if there is one. The thread only computes; every statement
    runs on the caller's thread, in its transaction.

    SQLite copies the WAL back into the database (a checkpoint, with two fsyncs) whenever a
    commit leaves it over 1,000 pages; a batch of 1,000 phones writes about 200, so a run
    checkpointed every few batches, copying the same index pages again each time. During
    the run the WAL may grow to CHECKPOINT_PAGES instead, and the run ends with one.
    """

    def __init__(self, store: Store, due: Select[Any]) -> None:
        self.store = store
        batch = due.subquery()
        pid, user, days = batch.c
        lifetime = func.coalesce(days, 0)
        self.query = select(func.count(), func.coalesce(func.max(pid), 0),
                            func.json_group_array(pid), func.json_group_array(user),
                            func.json_group_array(days), func.min(lifetime),
                            func.max(lifetime))
        self.compiled: tuple[str, list[str], dict[str, Any]] | None = None
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtctl-digests")
        self.checkpoint_pages: int | None = None  # the connection's own, to put back

    def __enter__(self) -> Batches:
        return self

    def __exit__(self, failure: type[BaseException] | None, *_: object) -> None:
        self.worker.shutdown()
        if self.checkpoint_pages is not None and failure is None:
            # Back to the usual checkpoints, and one now, outside any transaction (PASSIVE:
            # it waits for nobody), so the next writer does not inherit a long WAL.
            with _translated(), closing(self.store.engine.raw_connection()) as raw:
                cursor = raw.cursor()
                cursor.execute(f"PRAGMA wal_autocheckpoint={self.checkpoint_pages}")
                # Never fails for being busy: it says so in its result, and whoever is
                # checkpointing does this one's work.
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cursor.close()

    def _read(self, cursor: Any, conn: Connection, *, now: datetime, within: timedelta,
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

    def rotate(self, conn: Connection, *, after_id: int, size: int, within: timedelta,
               realm: str, now: datetime, default_lifetime: int, grace: timedelta, actor: str,
               failed: list[dict[str, Any]], collect: bool,
               ) -> tuple[int, int, int, list[dict[str, Any]]]:
        """Rotate the next SIZE phones due at NOW after AFTER_ID, read inside this write
        transaction.

        Returns how many were due, the last id read (0 if none), how many were rotated, and
        (when collecting) the rotated phones.
        """
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if self.checkpoint_pages is None:
            self.checkpoint_pages = cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        cursor.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        try:
            count, last_id, ids, users, lifetimes, least, greatest = self._read(
                cursor, conn, now=now, within=within, after_id=after_id, size=size)
            if not count:
                return 0, 0, 0, []
            batch = _Batch(count, ids, users)
            # By key lifetime: each lifetime is one expiry, so one pair of statements.
            groups: dict[int, list[int] | None] = {least or default_lifetime: None}  # all
            if least != greatest:
                by_lifetime: dict[int, list[int]] = {}
                for place, days in enumerate(json.loads(lifetimes)):
                    by_lifetime.setdefault(days or default_lifetime, []).append(place)
                groups = {days: places for days, places in by_lifetime.items()}
            as_time = bind_processor(phone.c.key_expires_at, conn)
            common = {"at": bind_processor(audit_log.c.at, conn)(now), "actor": actor,
                      "updated": as_time(now),
                      "grace_until": as_time(now + grace) if grace else None}
            rotated: list[tuple[int, str]] = []  # (place, new expiry)
            for lifetime, places in groups.items():
                error = keys.lifetime_error(lifetime)
                if error:
                    failed += _failures(cursor, batch, [(i, error) for i in batch.all(places)])
                    continue
                expires = now + timedelta(days=lifetime)
                text = expires.isoformat(timespec="seconds")
                values = common | {"expires": as_time(expires), "expires_text": text}
                done = self._write(cursor, batch, places, values, grace, realm, failed)
                rotated += [(i, text) for i in done]
            items: list[dict[str, Any]] = []
            if collect and rotated:
                rotated.sort()
                labels = _labels(cursor, batch, [i for i, _ in rotated])
                items = [{"extension": number, "position": position, "key_expires_at": text}
                         for (number, position), (_, text) in zip(labels, rotated, strict=True)]
        finally:
            cursor.close()
        return count, last_id, len(rotated), items

    def _write(self, cursor: Any, batch: _Batch, places: list[int] | None,
               values: dict[str, Any], grace: timedelta, realm: str,
               failed: list[dict[str, Any]]) -> list[int]:
        """Audit and rotate the phones at PLACES (None: all; one expiry); the ones rotated."""
        mark = cursor.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]
        audit = values | {"ids": batch.ids_json(places)}  # each statement takes what it names
        # Nothing between handing the thread its work and the INSERT: a statement run while
        # the thread computes would wait for the GIL until the thread is done or forced off it.
        digesting = self.worker.submit(batch.digests, places, realm)
        cursor.execute(AUDIT_ROTATION, audit)
        good, ha1, ha1_sha256, errors = digesting.result()
        if errors:  # never audit a phone that keeps its key
            failed += _failures(cursor, batch, errors)
            cursor.execute("DELETE FROM audit_log WHERE id > ?", (mark,))
            if not good:
                return []
            places = good
            cursor.execute(AUDIT_ROTATION, values | {"ids": batch.ids_json(places)})
        cursor.execute(SET_KEY if grace else SET_KEY_ONLY,
                       values | {"ids": batch.ids_json(places), "ha1": ha1,
                                 "ha1_sha256": ha1_sha256})
        return batch.all(places)


class _Batch:
    """A batch's due phones as read: ids and auth users as JSON arrays, parsed when needed,
    and a new password for each (made by the digesting thread, the only one to use them)."""

    def __init__(self, count: int, ids: str, users: str) -> None:
        self.count, self.ids_text, self.users_text = count, ids, users
        self.passwords: list[str] | None = None

    def all(self, places: list[int] | None) -> list[int]:
        return list(range(self.count)) if places is None else places

    def ids(self) -> list[int]:
        parsed: list[int] = json.loads(self.ids_text)
        return parsed

    def ids_json(self, places: list[int] | None) -> str:
        if places is None:
            return self.ids_text
        ids = self.ids()
        return json.dumps([ids[i] for i in places])

    def digests(self, places: list[int] | None, realm: str,
                ) -> tuple[list[int] | None, bytes, bytes, list[tuple[int, str]]]:
        """The phones whose key could be digested (PLACES if all), their digests
        (`keys.digest_columns`), and the others with why: one bad phone must not stop the
        night's rotation."""
        if self.passwords is None:
            self.passwords = keys.new_passwords(self.count)
        users: list[str] = json.loads(self.users_text)
        passwords = self.passwords
        if places is not None:
            users, passwords = [users[i] for i in places], [passwords[i] for i in places]
        with suppress(Exception):  # else find which phones fail, below
            return (places, *keys.digest_columns(users, realm, passwords), [])
        good, errors = [], []
        for i, user, password in zip(self.all(places), users, passwords, strict=True):
            try:
                keys.digests(user, realm, password)
            except Exception as exc:  # noqa: BLE001
                errors.append((i, type(exc).__name__))
            else:
                good.append(i)
        everyone = json.loads(self.users_text)
        return (good, *keys.digest_columns([everyone[i] for i in good], realm,
                                           [self.passwords[i] for i in good]), errors)


def _labels(cursor: Any, batch: _Batch, places: list[int]) -> list[tuple[str, int]]:
    """Extension number and position of the phones at PLACES, in that order."""
    ids = batch.ids()
    wanted = [ids[i] for i in places]
    found = dict((pid, (number, position)) for pid, number, position in cursor.execute(
        "SELECT p.id, e.number, p.position FROM json_each(?) AS n "
        "JOIN phone AS p ON p.id = n.value JOIN extension AS e ON e.id = p.extension_id",
        (json.dumps(wanted),)))
    return [found[pid] for pid in wanted]


def _failures(cursor: Any, batch: _Batch, errors: list[tuple[int, str]],
              ) -> list[dict[str, Any]]:
    labels = _labels(cursor, batch, [i for i, _ in errors])
    return [{"extension": number, "position": position, "error": error}
            for (number, position), (_, error) in zip(labels, errors, strict=True)]
