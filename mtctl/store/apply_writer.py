"""Writing an apply plan (see apply.py): bulk statements, all in the caller's one transaction.

Rows go to the driver as plain tuples straight from generators (store/bulk.py), compiled
once per statement, and the audit rows' JSON comes from json's C encoder (phones alike share
theirs): at 100,000 extensions the per-row Python work is much of the time.

Long because: one writer runs the whole plan in dependency order (settings, catalog,
removals, extensions, phones and their keys, groups, users, audit), each section using the
ids and values the earlier ones wrote; split, the parts would share that state anyway.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, bindparam, cast, delete, insert, null, select, update
from sqlalchemy.engine import Connection

from mtctl.domain import keys
from mtctl.domain.devices import DEVICE_PROFILES
from mtctl.domain.plan import (
    EXTENSION_FIELDS,
    FIELDS,
    MODEL_FIELDS,
    PHONE_FIELDS,
    PHONE_VALUES,
    USER_FIELDS,
    Change,
    Plan,
    State,
)
from mtctl.store import config as settings_store
from mtctl.store import phones
from mtctl.store.bulk import Bulk, bind_processor, bulk_insert, bulk_update, chunks
from mtctl.store.rows import rows_of
from mtctl.store.tables import (
    app_user,
    audit_log,
    category,
    extension,
    node,
    phone,
    phone_model,
    setting,
    template,
    user_webcall_extension,
    webcall_group,
    webcall_group_extension,
)
from mtctl.store.webcall import end_invalid_sessions, end_sessions_on

AUDIT_ACTION = {"add": "add", "change": "set", "remove": "remove"}
PASSWORD_BLOCK = 256  # new SIP passwords drawn from the CSPRNG at a time, each used once
NAMED = {"node": node, "category": category, "model": phone_model, "template": template,
         "group": webcall_group}


def write_plan(conn: Connection, state: State, plan: Plan, *, actor: str,
               now: datetime) -> None:
    """Execute a checked plan: catalog, removals, extensions, phones, groups, users, audit."""
    _Writer(conn, state, plan, actor=actor, now=now).run()


class _Writer:
    def __init__(self, conn: Connection, state: State, plan: Plan, *, actor: str,
                 now: datetime) -> None:
        self.conn, self.state, self.plan, self.actor, self.now = conn, state, plan, actor, now
        self.by_kind: dict[tuple[str, str], list[Change]] = defaultdict(list)
        for change in plan.changes:
            self.by_kind[(change.action, change.kind)].append(change)
        self.time = bind_processor(phone.c.key_expires_at, conn)
        self._lifetimes: dict[str, int] | None = None
        self._times: dict[str, tuple[Any, Any]] = {}
        self._passwords: list[str] = []
        self._profiles: dict[str, str | None] | None = None
        self.realm = ""

    def changes(self, action: str, kind: str) -> list[Change]:
        return self.by_kind.get((action, kind), [])

    def ids(self, kind: str) -> dict[str, int]:
        table = NAMED[kind]
        return {name: row_id for row_id, name in rows_of(self.conn,
                                                        select(table.c.id, table.c.name))}

    def run(self) -> None:
        self._settings()
        self._catalog()
        self._remove_users()
        self._remove_extensions()
        self._extensions()
        self._phones()
        self._groups()
        self._users()
        self._remove_catalog()
        self._audit()

    def _settings(self) -> None:
        conn = self.conn
        for c in self.changes("add", "config"):
            conn.execute(insert(setting).values(key=c.name, value=c.values[0]))  # type: ignore[index]
        for c in self.changes("change", "config"):
            conn.execute(update(setting).where(setting.c.key == c.name)
                         .values(value=c.diff["value"][1]))  # type: ignore[index]
        names = [c.name for c in self.changes("remove", "config")]
        if names:
            conn.execute(delete(setting).where(setting.c.key.in_(names)))

    def _catalog(self) -> None:
        conn = self.conn
        for kind in ("node", "category"):
            added = [{"name": c.name} for c in self.changes("add", kind)]
            if kind == "node":  # and its SIP address, when the file gives nodes as a table
                added = [row | {"sip_address": (c.values or (None,))[0]}
                         for row, c in zip(added, self.changes("add", kind), strict=True)]
            if added:
                conn.execute(insert(NAMED[kind]), added)
        for c in self.changes("change", "node"):
            conn.execute(update(node).where(node.c.name == c.name)
                         .values(sip_address=(c.diff or {})["sip_address"][1]))
        self.category_ids = self.ids("category")
        models = [{"name": c.name, **dict(zip(MODEL_FIELDS, c.values or (), strict=True))}
                  for c in self.changes("add", "model")]
        if models:
            conn.execute(insert(phone_model), models)
        for c in self.changes("change", "model"):
            conn.execute(update(phone_model).where(phone_model.c.name == c.name)
                         .values(**{f: a for f, (_, a) in (c.diff or {}).items()}))
        for c in self.changes("add", "template"):
            for_webcall, secure, lifetime, cat = c.values or ()
            conn.execute(insert(template).values(
                name=c.name, for_webcall=for_webcall, secure=secure,
                key_lifetime_days=lifetime, category_id=self.category_ids[cat] if cat else None))
        for c in self.changes("change", "template"):
            values = {f: a for f, (_, a) in (c.diff or {}).items()}
            if "category" in values:
                name = values.pop("category")
                values["category_id"] = self.category_ids[name] if name else None
            conn.execute(update(template).where(template.c.name == c.name).values(**values))
        groups = [{"name": c.name} for c in self.changes("add", "group")]
        if groups:
            conn.execute(insert(webcall_group), groups)
        self.node_ids, self.model_ids = self.ids("node"), self.ids("model")
        self.template_ids, self.group_ids = self.ids("template"), self.ids("group")

    def _remove_users(self) -> None:
        """Pruned users, and users whose login moves (added again below: logins are unique)."""
        self.relogin = {c.name for c in self.changes("change", "user")
                        if "login" in (c.diff or {})}
        names = [c.name for c in self.changes("remove", "user")] + sorted(self.relogin)
        # their sessions end audited (the rows would go silently with the users)
        end_invalid_sessions(self.conn, actor=self.actor, user_ids=[],
                             ending_users=[self.state.users[name][0] for name in names])
        for batch in chunks([self.state.users[name][0] for name in names]):
            self.conn.execute(delete(user_webcall_extension)
                              .where(user_webcall_extension.c.user_id.in_(batch)))
            self.conn.execute(delete(app_user).where(app_user.c.id.in_(batch)))

    def _stored_phone(self, name: str) -> tuple[Any, ...]:
        number, position = name.rsplit(":", 1)
        return self.state.phones[self.state.extensions[number][0]][int(position)]

    def _remove_extensions(self) -> None:
        conn = self.conn
        phone_ids = [self._stored_phone(c.name)[0] for c in self.changes("remove", "phone")]
        for batch in chunks(phone_ids):
            conn.execute(delete(phone).where(phone.c.id.in_(batch)))
        ext_ids = [self.state.extensions[c.name][0]
                   for c in self.changes("remove", "extension")]
        end_sessions_on(conn, actor=self.actor, extension_ids=ext_ids)
        for batch in chunks(ext_ids):
            conn.execute(delete(webcall_group_extension)
                         .where(webcall_group_extension.c.extension_id.in_(batch)))
            conn.execute(delete(user_webcall_extension)
                         .where(user_webcall_extension.c.extension_id.in_(batch)))
            conn.execute(delete(extension).where(extension.c.id.in_(batch)))

    def _extensions(self) -> None:
        conn, node_ids = self.conn, self.node_ids
        added = self.changes("add", "extension")
        bulk_insert(conn, extension, ("number", "node_id", "display_name", "ring_timeout")).run(
            (c.name, node_ids[c.values[0]], c.values[1], c.values[2])  # type: ignore[index]
            for c in added)
        self.ext_ids = {number: values[0] for number, values in self.state.extensions.items()}
        if added:
            self.ext_ids = dict(rows_of(conn, select(extension.c.number, extension.c.id)))
        self.target_node = {number: values[1]
                            for number, values in self.state.extensions.items()}
        for c in added:
            self.target_node[c.name] = c.values[0]  # type: ignore[index]
        rows, moves = [], []
        for c in self.changes("change", "extension"):
            stored = self.state.extensions[c.name]
            node_name, display, timeout = _after(c, EXTENSION_FIELDS, stored[1:])
            self.target_node[c.name] = node_name
            rows.append((node_ids[node_name], display, timeout, stored[0]))
            if "node" in (c.diff or {}):
                moves.append((node_ids[node_name], stored[0]))
        bulk_update(conn, extension, "id", ("node_id", "display_name", "ring_timeout")).run(rows)
        # MT008: an extension's phones move with it, listed in the file or not; their
        # registrations at the old node are dropped (SPEC §8).
        bulk_update(conn, phone, "extension_id", ("node_id",)).run(moves)
        if moves:
            from mtctl.store.live import drop_registrations

            drop_registrations(conn, [ext_id for _, ext_id in moves])

    def _phones(self) -> None:
        conn = self.conn
        # A MAC may pass from one phone to another in one file: the phones whose MAC changes
        # let go of theirs first, so no statement below meets it still held (it is unique).
        releasing = [self._stored_phone(c.name)[0] for c in self.changes("change", "phone")
                     if "mac" in (c.diff or {})]
        for batch in chunks(releasing):
            conn.execute(update(phone).where(phone.c.id.in_(batch)).values(mac=None))
        added = self.changes("add", "phone")
        if added:
            bulk_insert(conn, phone, PHONE_INSERT).run(self._new_phones(added))
        rows, keyed, unkeyed = [], [], []
        for c in self.changes("change", "phone"):
            stored = self._stored_phone(c.name)
            values = _after(c, PHONE_FIELDS, stored[PHONE_VALUES])
            number = c.name.rsplit(":", 1)[0]
            rows.append((*self._phone_values(values, self.target_node[number]), stored[0]))
            if "secure" in (c.diff or {}) or self._new_device(c):
                if values[6]:
                    keyed.append((stored[0], values[3]))
                else:
                    unkeyed.append((self.time(self.now), stored[0]))
        bulk_update(conn, phone, "id", PHONE_COLUMNS).run(rows)
        if keyed:
            auth = dict(conn.execute(select(phone.c.id, phone.c.sip_auth_user)
                                     .where(phone.c.id.in_([k[0] for k in keyed]))).all())
            bulk_update(conn, phone, "id", KEY_COLUMNS).run(
                (*self._key(auth[phone_id], template_name), phone_id)
                for phone_id, template_name in keyed)
            for batch in chunks([phone_id for phone_id, _ in keyed]):
                conn.execute(update(phone).where(phone.c.id.in_(batch)).values(**NOT_DELIVERED))
        Bulk(conn, update(phone).where(phone.c.id == bindparam("b_key")).values(
            ha1=null(), ha1_sha256=null(), key_expires_at=null(), **NOT_DELIVERED,
            key_updated_at=bindparam("b_updated")), ["b_updated", "b_key"]).run(unkeyed)

    def _new_device(self, c: Change) -> bool:
        """A secure desk phone given another MAC: the keys the old device fetched must stop
        working, and the new one has fetched nothing yet."""
        diff = c.diff or {}
        if c.action != "change" or c.kind != "phone" or "mac" not in diff or "secure" in diff:
            return False
        values = _after(c, PHONE_FIELDS, self._stored_phone(c.name)[PHONE_VALUES])
        if self._profiles is None:
            self._profiles = dict(rows_of(self.conn, select(phone_model.c.name,
                                                            phone_model.c.profile)))
        return bool(values[6]) and self._profiles.get(values[2]) in DEVICE_PROFILES

    def _phone_values(self, values: Sequence[Any], node_name: str) -> tuple[Any, ...]:
        """PHONE_COLUMNS of a phone with these PHONE_FIELDS on this node."""
        order, enabled, model, template_name, category_name, location, secure, pub, mac = values
        return (self.node_ids[node_name], order, enabled, self.model_ids[model],
                self.template_ids[template_name],
                self.category_ids[category_name] if category_name else None, location, secure,
                pub, mac)

    def _new_phones(self, added: list[Change]) -> Iterator[tuple[Any, ...]]:
        taken = set(self.conn.execute(select(phone.c.sip_auth_user)).scalars())
        no_key = (None, None, None, None)
        ext_ids, target_node, phone_values = self.ext_ids, self.target_node, self._phone_values
        for c in added:
            number, position = c.name.rsplit(":", 1)
            values = c.values or ()
            candidate = keys.sip_auth_user(number, int(position), taken.__contains__)
            if len(candidate) > len(number) + 2 or not number.isdigit():  # a plain "EXT-POS"
                taken.add(candidate)  # is never another new phone's: one EXT:POS each
            yield (ext_ids[number], int(position), *phone_values(values, target_node[number]),
                   candidate, *(self._key(candidate, values[3]) if values[6] else no_key))

    def _key(self, auth_user: str, template_name: str) -> tuple[Any, ...]:
        """A system key (MT011): the password is digested and dropped right here. Its times
        (expiry first: it reads the realm too) as the driver takes them, once per template."""
        times = self._times.get(template_name) or self._times.setdefault(template_name, (
            self.time(self.expiry(template_name)), self.time(self.now)))
        if not self._passwords:  # fresh ones from the CSPRNG, a block at a time
            self._passwords = keys.new_passwords(PASSWORD_BLOCK)
        ha1, ha1_sha256 = keys.digests(auth_user, self.realm, self._passwords.pop())
        return ha1, ha1_sha256, *times

    def expiry(self, template_name: str) -> datetime:
        """When a key made now for a phone of this template expires (settings as written)."""
        if self._lifetimes is None:
            self._lifetimes = {
                name: settings_store.key_lifetime(self.conn, name, lifetime)
                for name, lifetime in self.conn.execute(
                    select(template.c.name, template.c.key_lifetime_days)).all()}
            self.realm = settings_store.get_value(self.conn, "sip.realm") or ""
        return self.now + timedelta(days=self._lifetimes[template_name])

    def _groups(self) -> None:
        members = {c.name: c.values[0] for c in self.changes("add", "group")}  # type: ignore[index]
        members |= {c.name: c.diff["extensions"][1]  # type: ignore[index]
                    for c in self.changes("change", "group")}
        if not members:
            return
        self.conn.execute(delete(webcall_group_extension).where(
            webcall_group_extension.c.group_id.in_([self.group_ids[n] for n in members])))
        bulk_insert(self.conn, webcall_group_extension, ("group_id", "extension_id", "rank")).run(
            (self.group_ids[name], self.ext_ids[number], rank)
            for name, numbers in members.items() for rank, number in enumerate(numbers))

    def _users(self) -> None:
        conn = self.conn
        fresh = [(c.name, c.values or ()) for c in self.changes("add", "user")]
        rows, webcall = [], []
        for c in self.changes("change", "user"):
            stored = self.state.users[c.name]
            values = _after(c, USER_FIELDS, stored[1:])
            if c.name in self.relogin:
                fresh.append((c.name, values))
                continue
            rows.append((*self._user_values(values), stored[0]))
            if "webcall_extensions" in (c.diff or {}):
                webcall.append((stored[0], values[4]))
        bulk_update(conn, app_user, "id", USER_COLUMNS).run(rows)
        if fresh:
            bulk_insert(conn, app_user, ("username", "login_extension_id", *USER_COLUMNS)).run(
                (name, self.ext_ids[values[1]], *self._user_values(values))
                for name, values in fresh)
            user_ids = dict(rows_of(conn, select(app_user.c.username, app_user.c.id)))
            webcall += [(user_ids[name], values[4]) for name, values in fresh if values[4]]
        for batch in chunks([user_id for user_id, _ in webcall]):
            conn.execute(delete(user_webcall_extension)
                         .where(user_webcall_extension.c.user_id.in_(batch)))
        bulk_insert(conn, user_webcall_extension, ("user_id", "extension_id", "rank")).run(
            (user_id, self.ext_ids[number], rank)
            for user_id, numbers in webcall for rank, number in enumerate(numbers))

    def _user_values(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """USER_COLUMNS of a user with these USER_FIELDS."""
        display_name, _, mode, license_, _, group, position = values
        return (display_name, mode, license_, self.group_ids[group] if group else None,
                position)

    def _remove_catalog(self) -> None:
        for kind in ("group", "template", "model", "category", "node"):
            table = NAMED[kind]
            for batch in chunks([c.name for c in self.changes("remove", kind)]):
                self.conn.execute(delete(table).where(table.c.name.in_(batch)))

    def _audit(self) -> None:
        """One audit row per changed object; secrets never reach it."""
        text = bindparam("b_changes", type_=String)
        statement = insert(audit_log).values(
            at=bindparam("b_at"), actor=bindparam("b_actor"), action=bindparam("b_action"),
            object=bindparam("b_object"),
            # PostgreSQL will not turn a text parameter into json by itself.
            changes=cast(text, JSON) if self.conn.dialect.name == "postgresql" else text)
        at = bind_processor(audit_log.c.at, self.conn)(self.now)
        expiry_texts: dict[str, str] = {}
        # Phones added with the same values (most of a large file) share their audit text.
        same: dict[tuple[Any, ...], str | None] = {}

        def changes_text(c: Change) -> str | None:
            if c.action == "add" and c.kind == "phone":
                key = c.values or ()
                if key not in same:
                    same[key] = build(c) if len(same) < 50_000 else None
                return same[key] or build(c)
            return build(c)

        def build(c: Change) -> str | None:
            fields: dict[str, list[Any]]
            if c.action == "add":
                fields = {f: [None, v] for f, v in zip(FIELDS[c.kind], c.values or (),
                                                       strict=False)}
            elif c.action == "remove":
                fields = {f: [v, None] for f, v in zip(FIELDS[c.kind], c.values or (),
                                                       strict=False)}
            else:
                fields = dict(c.diff or {})
            keyed = self._keyed_template(c)
            if keyed is not None:
                if keyed not in expiry_texts:
                    expiry_texts[keyed] = self.expiry(keyed).isoformat(timespec="seconds")
                fields["key_expires_at"] = [None, expiry_texts[keyed]]
            # json's C encoder (a tuple as a list, nothing escaped beyond JSON's own)
            return json.dumps(fields, ensure_ascii=False) if fields else None

        Bulk(self.conn, statement, ["b_at", "b_actor", "b_action", "b_object", "b_changes"]
              ).run((at, self.actor, AUDIT_ACTION[c.action], c.object, changes_text(c))
                    for c in self.plan.changes)

    def _keyed_template(self, c: Change) -> str | None:
        """The template of a phone this plan gives a key, else None."""
        if c.kind != "phone":
            return None
        name: str | None = None
        if c.action == "add":
            values = c.values or ()
            name = values[3] if values[6] else None
        elif c.action == "change" and ((diff := c.diff or {}).get("secure", [None, False])[1]
                                       or self._new_device(c)):
            name = diff["template"][1] if "template" in diff else self._stored_phone(c.name)[5]
        return name


def _after(change: Change, fields: Sequence[str], before: Sequence[Any]) -> tuple[Any, ...]:
    """The values of a changed object after the change."""
    diff = change.diff or {}
    return tuple(diff[f][1] if f in diff else old for f, old in zip(fields, before, strict=True))


PHONE_COLUMNS = ("node_id", "ring_order", "enabled", "model_id", "template_id", "category_id",
                 "location", "secure", "publishable", "mac")
KEY_COLUMNS = ("ha1", "ha1_sha256", "key_expires_at", "key_updated_at")
NOT_DELIVERED: dict[str, Any] = dict.fromkeys(phones.NOT_DELIVERED, null())  # SQL NULLs
PHONE_INSERT = ("extension_id", "position", *PHONE_COLUMNS, "sip_auth_user", *KEY_COLUMNS)
USER_COLUMNS = ("display_name", "webcall_mode", "webcall_license", "webcall_group_id",
                "webcall_position")
