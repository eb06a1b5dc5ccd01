"""Rules enforced on every write: load what the write touched and ask the domain."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Column, ColumnElement, Table
from sqlalchemy.engine import Connection

from mtctl.domain.rules import Violation, extension_violations, user_violations
from mtctl.domain.values import check_text as check_control
from mtctl.errors import RuleViolation, UsageError
from mtctl.store.snapshots import extension_specs, user_specs, users_touching


def violations_for(conn: Connection, *, extension_ids: Iterable[int] = (),
                   user_ids: Iterable[int] = ()) -> list[Violation]:
    """Every rule broken by these extensions, these users, and the users of these extensions."""
    ext_ids = set(extension_ids)
    users = user_specs(conn, set(user_ids) | users_touching(conn, ext_ids))
    needed = set(ext_ids)
    for _, named in users.values():
        needed |= named
    specs = extension_specs(conn, needed)
    found: list[Violation] = []
    for ext_id in sorted(ext_ids):
        if ext_id in specs:
            found.extend(extension_violations(specs[ext_id]))
    by_number = {spec.number: spec for spec in specs.values()}
    for user, _ in sorted(users.values(), key=lambda pair: pair[0].username):
        found.extend(user_violations(user, by_number))
    return found


def enforce(conn: Connection, *, extension_ids: Iterable[int] = (),
            user_ids: Iterable[int] = ()) -> None:
    """Raise RuleViolation (the transaction then rolls back) if the write broke any rule."""
    found = violations_for(conn, extension_ids=extension_ids, user_ids=user_ids)
    if found:
        raise RuleViolation(found)


INT_MAX = 2**31 - 1  # the store's INTEGER columns on every backend
_ENTITY = {"app_user": "user", "phone_model": "model", "webcall_group": "group"}


def check_text(table: Table, values: Mapping[str, object]) -> None:
    """Refuse values the store cannot hold the same way on every backend (exit 2).

    SQLite ignores VARCHAR lengths and takes 64-bit integers, PostgreSQL refuses NUL
    characters; checking here gives both backends the same answer. Control characters
    (newline, ESC, DEL, C1) are refused in every text: a config file refuses them too, and a
    name holding one would act on the terminal of whoever lists it.
    """
    for name, value in values.items():
        what = f"{_ENTITY.get(table.name, table.name)} {name.replace('_', ' ')}"
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT_MAX:
            raise UsageError(f"{what} {value} is too large", f"use a number up to {INT_MAX}")
        if not isinstance(value, str) or name not in table.c:
            continue
        if "\x00" in value:
            raise UsageError(f"{what} contains a NUL character", "remove it")
        check_control(what, value)
        limit = getattr(table.c[name].type, "length", None)
        if limit is not None and len(value) > limit:
            raise UsageError(f"{what} is {len(value)} characters long, more than {limit}",
                             f"use at most {limit} characters")


def value_findings(conn: Connection) -> Iterator[Violation]:
    """`bad-text` for stored text holding control characters and `bad-setting` for settings
    or template key lifetimes out of range: what a store written before these checks (or by
    other means) may hold. Each finding says how to fix it."""
    from sqlalchemy import or_, select

    from mtctl.domain.config_keys import MAX_LIFETIME_DAYS, SETTINGS, rotation_conflicts
    from mtctl.domain.values import CONTROL, control_character, escape
    from mtctl.store.tables import (
        app_user,
        category,
        extension,
        node,
        phone,
        phone_model,
        setting,
        template,
        webcall_group,
    )

    named = [("node", node, ("name",)), ("category", category, ("name",)),
             ("model", phone_model, ("name", "vendor")), ("template", template, ("name",)),
             ("group", webcall_group, ("name",)), ("user", app_user, ("username",
                                                                      "display_name"))]
    fix = "replace it with printable text (export, edit the file, apply --prune)"
    suspect = _suspect_text(conn)
    for what, table, columns in named:
        key = table.c.username if what == "user" else table.c.name
        for row in conn.execute(select(key, *(table.c[c] for c in columns)).where(
                or_(*(suspect(table.c[c]) for c in columns)))):
            for column, value in zip(columns, row[1:], strict=True):
                if value is not None and CONTROL.search(value):
                    yield Violation("bad-text", f"{what} {escape(row[0])}",
                                    f"{column.replace('_', ' ')} contains "
                                    f"{control_character(value)}", fix)
    for number, value in conn.execute(select(extension.c.number, extension.c.display_name)
                                      .where(suspect(extension.c.display_name))):
        if value is not None and CONTROL.search(value):
            yield Violation("bad-text", f"extension {escape(number)}",
                            f"display name contains {control_character(value)}",
                            f"run: mtctl ext set {escape(number)} --name NAME")
    for number, position, value in conn.execute(
            select(extension.c.number, phone.c.position, phone.c.location)
            .join(extension, phone.c.extension_id == extension.c.id)
            .where(suspect(phone.c.location))):
        if CONTROL.search(value):
            yield Violation("bad-text", f"phone {escape(number)}:{position}",
                            f"location contains {control_character(value)}",
                            f"run: mtctl phone set {escape(number)} {position} --location L")
    for key, value in conn.execute(select(setting.c.key, setting.c.value)):
        if key in SETTINGS:
            try:
                SETTINGS[key].parse(value)
            except ValueError as exc:
                yield Violation("bad-setting", f"setting {key}", f"holds {value[:60]!r}, not "
                                f"{exc}", f"run: mtctl config set {key} VALUE, or unset it")
    for name, days in conn.execute(select(template.c.name, template.c.key_lifetime_days)
                                   .where(template.c.key_lifetime_days.is_not(None))):
        if not 1 <= days <= MAX_LIFETIME_DAYS:
            yield Violation("bad-setting", f"template {escape(name)}",
                            f"key lifetime {days} days is out of range (1 to "
                            f"{MAX_LIFETIME_DAYS})", "export, fix key_lifetime_days, apply")
    stored = dict(conn.execute(select(setting.c.key, setting.c.value)).all())
    lifetimes = dict(conn.execute(select(template.c.name, template.c.key_lifetime_days)).all())
    for conflict in rotation_conflicts(stored, lifetimes):
        where = conflict.where if conflict.where.startswith("template ") \
            else f"setting {conflict.where}"
        yield Violation("bad-setting", escape(where), conflict.message, conflict.hint)


def _suspect_text(conn: Connection) -> Callable[[Column[Any]], ColumnElement[bool]]:
    """A cheap SQL test that a text column may hold a control character, so that only those
    rows travel to Python (a whole-store scan would double check's time): on SQLite, any
    character outside printable ASCII; on PostgreSQL, exactly the control characters."""
    from sqlalchemy import true

    dialect = conn.dialect.name
    if dialect == "sqlite":
        return lambda column: column.op("GLOB")("*[^ -~]*")
    if dialect == "postgresql":
        from mtctl.domain.values import CONTROL_CLASS

        # PostgreSQL text never holds NUL, and its regex refuses one: start the class at U+0001.
        pattern = f"[{CONTROL_CLASS.replace('u0000', 'u0001', 1)}]"
        return lambda column: column.op("~")(pattern)
    return lambda column: true()
