"""The hot read paths (ring-sim, phone list, user phones) straight on the driver.

Start-up is a product target, and importing SQLAlchemy costs more than everything else these
commands do. So they read through plain DB-API (sqlite3, psycopg) here, with SQL that mirrors
the Core queries of store/snapshots.py, store/ring.py and store/phones.py; tests compare the
two paths' results on random stores, on both backends. Opening never decides an error: when
this path cannot serve a store as it is (an unusual URL, no store, an old schema, a driver
error), `open_reader` returns None and the command goes through the Core path, which says
what is wrong exactly as every other command does.

Long because: it mirrors, in one module, the reads of several Core modules (phones, users,
ring targets, the batches of check and ring-sim --all), so that a hot command imports one
module and every SQL it runs without SQLAlchemy sits next to the others.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

from mtctl.domain.model import ExtensionSpec, PhoneSpec, UserSpec
from mtctl.domain.ringing import Presence, RingTarget
from mtctl.errors import MtctlError, NotFound, UsageError
from mtctl.store.revision import HEAD_REVISION
from mtctl.store.rows import TIME_COLUMNS, as_utc, public_phone

SQLITE_BUSY_TIMEOUT_S = 10.0  # as store/db.py
BATCH = 2_000  # extensions per batch of ring_targets(): memory stays flat as the store grows
_POSITION = attrgetter("position")

PHONE_SQL = (
    "SELECT p.id, p.extension_id, e.number, p.position, p.ring_order, p.enabled, m.name, "
    "m.kind, m.vendor, m.qr_provisionable, t.name, t.for_webcall, p.secure, p.publishable, "
    "pn.name, p.location, c.name, p.sip_auth_user, p.ha1 IS NOT NULL, p.key_expires_at, "
    "m.profile, p.mac, p.key_delivered_at, p.key_delivered_to "
    "FROM phone p JOIN extension e ON e.id = p.extension_id "
    "JOIN phone_model m ON m.id = p.model_id JOIN template t ON t.id = p.template_id "
    "JOIN node pn ON pn.id = p.node_id LEFT OUTER JOIN category c ON c.id = p.category_id"
)
EXTENSION_SQL = (
    "SELECT e.id, e.number, n.name, e.display_name, e.ring_timeout "
    "FROM extension e JOIN node n ON n.id = e.node_id"
)
SPEC_SQL = (
    "SELECT p.extension_id, e.number, p.position, p.ring_order, p.enabled, p.model_id, "
    "p.template_id, p.secure, p.publishable, p.node_id, p.location, p.category_id, "
    "p.ha1 IS NOT NULL, p.key_expires_at, p.key_delivered_at IS NOT NULL "
    "FROM phone p JOIN extension e ON e.id = p.extension_id"
)
USER_SQL = (
    "SELECT u.id, u.username, u.display_name, e.number, u.webcall_mode, u.webcall_license, "
    "u.webcall_position, u.webcall_group_id, g.name, u.login_extension_id "
    "FROM app_user u JOIN extension e ON e.id = u.login_extension_id "
    "LEFT OUTER JOIN webcall_group g ON g.id = u.webcall_group_id"
)

# {where} is always a condition of placeholders built here (_in), never a value.
OWN_WEBCALL_SQL = (
    "SELECT w.user_id, e.id, e.number FROM user_webcall_extension w "
    "JOIN extension e ON e.id = w.extension_id WHERE {where} ORDER BY w.rank, e.number"
)
POOL_SQL = (
    "SELECT w.group_id, e.id, e.number FROM webcall_group_extension w "
    "JOIN extension e ON e.id = w.extension_id WHERE {where} ORDER BY w.rank, e.number"
)
SESSIONS_SQL = (
    "SELECT u.username, e.number FROM webcall_session s "
    "JOIN app_user u ON u.id = s.user_id JOIN extension e ON e.id = s.extension_id "
    "WHERE u.username = :user OR {where}"
)


class Reader:
    """One read transaction on a DB-API connection of the store (sqlite3 or psycopg)."""

    def __init__(self, dbapi_conn: Any, dialect: str) -> None:
        self._conn = dbapi_conn
        self.dialect = dialect
        self._catalog_rows: tuple[dict[Any, Any], ...] | None = None

    # --- plumbing ---------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        """Named parameters (:name) in the driver's style."""
        if self.dialect == "sqlite":
            return sql
        return re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        cursor = self._conn.cursor()
        try:
            cursor.execute(self._sql(sql), params or {})
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def _time(self, value: Any) -> datetime | None:
        if isinstance(value, str):
            return _sqlite_time(value)
        found: datetime | None = as_utc(value)  # a datetime, or None
        return found

    # --- phones -----------------------------------------------------------------------------

    def _phone_rows(self, where: str, params: dict[str, Any],
                    order: str = "") -> list[tuple[Any, ...]]:
        rows = self.rows(f"{PHONE_SQL} WHERE {where}{order}", params)
        if self.dialect == "sqlite":  # times as text (SQLAlchemy's DateTime on SQLite)
            rows = [row if all(row[at] is None for at in TIME_COLUMNS) else self._times(row)
                    for row in rows]
        return rows

    def _times(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(row)
        for at in TIME_COLUMNS:
            values[at] = self._time(values[at])
        return tuple(values)

    def _catalog(self) -> tuple[dict[Any, Any], ...]:
        """Models, templates, nodes and categories by id: small tables, read once, so the
        bulk phone reads join nothing but the extension."""
        if self._catalog_rows is None:
            models = {i: (name, kind, vendor, bool(qr), profile)
                      for i, name, kind, vendor, qr, profile in self.rows(
                          "SELECT id, name, kind, vendor, qr_provisionable, profile "
                          "FROM phone_model")}
            templates = {i: (name, bool(webcall)) for i, name, webcall in self.rows(
                "SELECT id, name, for_webcall FROM template")}
            nodes = dict(self.rows("SELECT id, name FROM node"))
            categories = {None: None, **dict(self.rows("SELECT id, name FROM category"))}
            self._catalog_rows = (models, templates, nodes, categories)
        return self._catalog_rows

    def phones_where(self, where: str, params: dict[str, Any]) -> dict[int, list[PhoneSpec]]:
        """PhoneSpecs by extension id, in position order (what snapshots.phone_spec makes of
        phone_query()'s rows; a test compares them)."""
        models, templates, nodes, categories = self._catalog()
        when = _sqlite_time if self.dialect == "sqlite" else as_utc
        found: dict[int, list[PhoneSpec]] = defaultdict(list)
        # Unordered: sorting each extension's few phones here costs less than an ORDER BY
        # (a temporary B-tree on SQLite when `where` picks extensions by number).
        for (ext_id, number, position, order, enabled, model_id, template_id, secure,
             publishable, node_id, location, category_id, has_key, expires,
             delivered) in self.rows(f"{SPEC_SQL} WHERE {where}", params):
            model, kind, vendor, qr, profile = models[model_id]
            template_name, for_webcall = templates[template_id]
            found[ext_id].append(PhoneSpec(
                number, position, order, model, kind, vendor, qr, bool(enabled), template_name,
                for_webcall, bool(secure), bool(publishable), nodes[node_id], location,
                categories[category_id], bool(has_key),
                None if expires is None else when(expires), profile, bool(delivered)))
        for phones in found.values():
            phones.sort(key=_POSITION)
        return found

    def list_phones(self, number: str | None = None) -> list[dict[str, Any]]:
        """Phones of one extension, or of all, by extension then position (phone list)."""
        order = " ORDER BY e.number, p.position"
        if number is None:
            return [public_phone(m) for m in self._phone_rows("1 = 1", {}, order)]
        ext_id = self.require_extension(number)
        return [public_phone(m) for m in self._phone_rows("p.extension_id = :id",
                                                          {"id": ext_id}, order)]

    def user_phones(self, username: str) -> list[dict[str, Any]]:
        """The user-portal view: phones of the login extension and of own Web Call extensions."""
        user_id = self.scalar("SELECT id FROM app_user WHERE username = :u", {"u": username})
        if user_id is None:
            raise NotFound(f"unknown user {username!r}", "see: mtctl user list")
        spec, _ = self.user_specs([user_id])[user_id]
        numbers = [spec.login, *(n for n in spec.webcall_extensions if n != spec.login)]
        where, params = _in("e.number", numbers)
        keys = ("model", "extension", "location", "position", "order", "enabled",
                "provisionable")
        return [{key: p[key] for key in keys} for p in map(public_phone, self._phone_rows(
            where, params, " ORDER BY e.number, p.position"))]

    def phone_exists(self, number: str, position: int) -> bool:
        return self.scalar(
            "SELECT p.id FROM phone p JOIN extension e ON e.id = p.extension_id "
            "WHERE e.number = :n AND p.position = :pos", {"n": number, "pos": position},
        ) is not None

    # --- extensions and users ---------------------------------------------------------------

    def require_extension(self, number: str) -> int:
        found = self.scalar("SELECT id FROM extension WHERE number = :n", {"n": number})
        if found is None:
            raise NotFound(f"unknown extension {number!r}", "see: mtctl ext list")
        return int(found)

    def _extensions(self, ext_rows: Sequence[tuple[Any, ...]],
                    phones: dict[int, list[PhoneSpec]]) -> dict[int, ExtensionSpec]:
        return {
            ext_id: ExtensionSpec(number=number, node=node, display_name=display,
                                  ring_timeout=timeout,
                                  phones=tuple(phones.get(ext_id, ())))
            for ext_id, number, node, display, timeout in ext_rows
        }

    def extension_specs(self, ids: Iterable[int]) -> dict[int, ExtensionSpec]:
        """The extensions with these ids, each with all its phones."""
        ids = list(ids)
        if not ids:
            return {}
        where, params = _in("e.id", ids)
        ext_rows = self.rows(f"{EXTENSION_SQL} WHERE {where}", params)
        where, params = _in("p.extension_id", ids)
        return self._extensions(ext_rows, self.phones_where(where, params))

    def user_specs(self, user_ids: Iterable[int], *, where: str | None = None,
                   params: dict[str, Any] | None = None,
                   ) -> dict[int, tuple[UserSpec, set[int]]]:
        """Users by id (or by a condition on the user `u` and login extension `e`), each with
        the ids of every extension it names (login and Web Call)."""
        if where is None:
            ids = list(user_ids)
            if not ids:
                return {}
            where, params = _in("u.id", ids)
        rows = self.rows(f"{USER_SQL} WHERE {where}", params)
        if not rows:
            return {}
        where, params = _in("w.user_id", [row[0] for row in rows])
        own: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for user_id, ext_id, number in self.rows(OWN_WEBCALL_SQL.format(where=where),
                                                 params):
            own[user_id].append((ext_id, number))
        pooled: dict[int, list[tuple[int, str]]] = defaultdict(list)
        group_ids = sorted({row[7] for row in rows if row[7] is not None})
        if group_ids:
            where, params = _in("w.group_id", group_ids)
            for group_id, ext_id, number in self.rows(POOL_SQL.format(where=where),
                                                      params):
                pooled[group_id].append((ext_id, number))
        result = {}
        for (user_id, username, display, login, mode, license_, position, group_id,
             group_name, login_id) in rows:
            mine = own[user_id]
            pool = pooled[group_id] if group_id is not None else []
            spec = UserSpec(
                username=username, display_name=display, login=login, webcall_mode=mode,
                webcall_license=license_, webcall_extensions=tuple(n for _, n in mine),
                webcall_group=group_name, group_extensions=tuple(n for _, n in pool),
                webcall_position=position,
            )
            result[user_id] = (spec, {login_id, *(i for i, _ in mine), *(i for i, _ in pool)})
        return result

    # --- who rings --------------------------------------------------------------------------

    def ring_target(self, number: str) -> RingTarget:
        """Resolve a called number: a user's login number, else a plain extension (SPEC §3)."""
        ext_id = self.scalar("SELECT id FROM extension WHERE number = :n", {"n": number})
        if ext_id is None:
            raise NotFound(f"nothing answers to {number!r}: no such extension or login number",
                           "see: mtctl ext list")
        users = self.user_specs((), where="u.login_extension_id = :id", params={"id": ext_id})
        if not users:
            ext = self.extension_specs([ext_id])[ext_id]
            return RingTarget(number=number, extension=ext)
        ((user, named),) = users.values()
        specs = self.extension_specs(named | {ext_id})
        return _target(number, specs[ext_id], user, specs)

    def ring_targets(self, batch: int = BATCH) -> Iterator[RingTarget]:
        """Every login number and plain extension, by number, read in batches of `batch`
        extensions (with their users and the Web Call extensions those name)."""
        after: str | None = None
        while True:
            where = "" if after is None else " WHERE e.number > :after"
            ext_rows = self.rows(f"{EXTENSION_SQL}{where} ORDER BY e.number LIMIT :limit",
                                 {"after": after, "limit": batch})
            if not ext_rows:
                return
            span = {"lo": ext_rows[0][1], "hi": ext_rows[-1][1]}
            extensions = self._extensions(ext_rows, self.phones_where(
                "e.number >= :lo AND e.number <= :hi", span))
            ids = {row[1]: row[0] for row in ext_rows}
            users = {ids[user.login]: (user, named) for user, named in self.user_specs(
                (), where="e.number >= :lo AND e.number <= :hi", params=span).values()}
            elsewhere = {i for _, named in users.values() for i in named} - extensions.keys()
            extensions.update(self.extension_specs(sorted(elsewhere)))
            for ext_id, number, *_ in ext_rows:
                if ext_id in users:
                    user, named = users[ext_id]
                    yield _target(number, extensions[ext_id], user,
                                  {i: extensions[i] for i in named if i in extensions})
                else:
                    yield RingTarget(number=number, extension=extensions[ext_id])
            after = ext_rows[-1][1]

    def extensions_by_id(self, batch: int = BATCH) -> Iterator[
            tuple[list[ExtensionSpec], list[tuple[int, UserSpec, dict[str, ExtensionSpec]]]]]:
        """Every extension with its phones, by id, `batch` extensions at a time; with each
        batch, the users whose login extension is in it (by user id), each with the
        extensions it names (login and Web Call) by number."""
        after = 0
        while True:
            ext_rows = self.rows(f"{EXTENSION_SQL} WHERE e.id > :after ORDER BY e.id "
                                 "LIMIT :limit", {"after": after, "limit": batch})
            if not ext_rows:
                return
            span = {"lo": ext_rows[0][0], "hi": ext_rows[-1][0]}
            specs = self._extensions(ext_rows, self.phones_where(
                "p.extension_id >= :lo AND p.extension_id <= :hi", span))
            users = self.user_specs((), where="u.login_extension_id >= :lo AND "
                                    "u.login_extension_id <= :hi", params=span)
            named = {i for _, ids in users.values() for i in ids}
            specs.update(self.extension_specs(sorted(named - specs.keys())))
            yield [specs[row[0]] for row in ext_rows], [
                (user_id, user, {specs[i].number: specs[i] for i in ids if i in specs})
                for user_id, (user, ids) in sorted(users.items())]
            after = ext_rows[-1][0]

    def session_of(self, username: str) -> str | None:
        """The extension of USERNAME's open Web Call session, or None."""
        found = self.scalar(
            "SELECT e.number FROM extension e JOIN webcall_session s ON s.extension_id = e.id "
            "JOIN app_user u ON u.id = s.user_id WHERE u.username = :u", {"u": username})
        return None if found is None else str(found)

    def sessions(self) -> dict[str, str]:
        """Every open Web Call session, as {username: extension}."""
        return {str(user): str(number) for user, number in self.rows(
            "SELECT u.username, e.number FROM webcall_session s "
            "JOIN app_user u ON u.id = s.user_id JOIN extension e ON e.id = s.extension_id")}


def check_presence(reader: Reader, target: RingTarget, presence: Presence) -> None:
    """Refuse presence flags that name phones or Web Call extensions that do not exist."""
    for number, position in sorted(presence.offline):
        if not reader.phone_exists(number, position):
            raise NotFound(f"--offline {number}:{position}: no such phone",
                           f"see: mtctl phone list {number}")
    chosen = presence.webcall_extension
    if chosen is None:
        return
    if target.user is None or target.user.webcall_mode is None:
        raise UsageError(f"--webcall-ext {chosen}: {target.number} has no user with Web Call",
                         "drop --webcall-ext")
    if chosen not in target.user.all_webcall_extensions:
        known = ", ".join(target.user.all_webcall_extensions) or "none"
        raise NotFound(f"--webcall-ext {chosen} is not one of {target.user.username}'s Web "
                       f"Call extensions ({known})", f"see: mtctl user show "
                       f"{target.user.username}")


def ring_sessions(reader: Reader, target: RingTarget) -> dict[str, str]:
    """The called user's Web Call session, as {username: extension} (empty when none)."""
    if target.user is None:
        return {}
    number = reader.session_of(target.user.username)
    return {target.user.username: number} if number is not None else {}


def webcall_sessions(reader: Reader, target: RingTarget) -> dict[str, str]:
    """The called user's Web Call session and every session on one of the user's Web Call
    extensions (who else is logged in where the user's Web Call could run), as {username:
    extension}."""
    if target.user is None:
        return {}
    where, params = _in("e.number", target.user.all_webcall_extensions)
    return {str(user): str(number) for user, number in reader.rows(
        SESSIONS_SQL.format(where=where), {"user": target.user.username, **params})}


@lru_cache(maxsize=4096)  # rotation gives a whole batch of keys one expiry
def _sqlite_time(text: str) -> datetime | None:
    """SQLite holds SQLAlchemy's DateTime as text ("2099-01-01 00:00:00.000000"), in UTC."""
    return as_utc(datetime.fromisoformat(text))


def _in(column: str, values: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """`column IN (:v0, :v1, ...)` and its parameters."""
    params = {f"v{k}": value for k, value in enumerate(values)}
    if not params:
        return "1 = 0", {}
    return f"{column} IN ({', '.join(':' + name for name in params)})", params


def _target(number: str, extension: ExtensionSpec, user: UserSpec,
            specs: dict[int, ExtensionSpec]) -> RingTarget:
    by_number = {spec.number: spec for spec in specs.values()}
    webcall = {n: by_number[n] for n in user.all_webcall_extensions if n in by_number}
    return RingTarget(number=number, extension=extension, user=user,
                      webcall_extensions=webcall)


def over(conn: Any) -> Reader:
    """A Reader inside a SQLAlchemy connection's transaction (the Core path's)."""
    return Reader(conn.connection.dbapi_connection, conn.dialect.name)


# --- opening ------------------------------------------------------------------------------

def _connect(url: str) -> tuple[Any, str] | None:
    """A DB-API connection for a plain store URL, or None for anything else."""
    if url.startswith("sqlite:///"):
        import os
        import sqlite3

        path = url[len("sqlite:///"):]
        if (not path or path == ":memory:" or path.startswith("file:")
                or any(c in path for c in "?%#\x00") or not os.path.isfile(path)):
            return None
        conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("BEGIN")
        return conn, "sqlite"
    if url.startswith("postgresql+psycopg://"):
        import psycopg

        conninfo = "postgresql://" + url[len("postgresql+psycopg://"):]
        pg = psycopg.connect(conninfo)
        pg.execute("SET TIME ZONE 'UTC'")  # as store/db.py; its transaction is the reader's
        return pg, "postgresql"
    return None


def open_reader(url: str) -> Reader | None:
    """A Reader on an existing store at this mtctl's schema, or None when this path cannot
    tell (then the Core path opens the store and reports what is wrong)."""
    try:
        opened = _connect(url)
    except Exception:  # noqa: BLE001 - the Core path will meet it and say it properly
        return None
    if opened is None:
        return None
    conn, dialect = opened
    try:
        reader = Reader(conn, dialect)
        if reader.scalar("SELECT version_num FROM alembic_version") == HEAD_REVISION:
            return reader
    except Exception:  # noqa: BLE001, S110 - no alembic_version, a locked file...: Core path
        pass
    conn.close()
    return None


@contextmanager
def reading(url: str) -> Iterator[Reader | None]:
    """A read transaction through the driver, or None (use the Core path); driver errors
    while reading become the same StoreError the Core path raises."""
    reader = open_reader(url)
    if reader is None:
        yield None
        return
    try:
        yield reader
    except MtctlError:
        raise
    except Exception as exc:
        from mtctl.store.db import driver_error

        error = driver_error(exc)
        if error is None:
            raise
        raise error from exc
    finally:
        reader._conn.close()
